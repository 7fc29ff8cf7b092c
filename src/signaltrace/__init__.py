"""django-signaltrace: see which Django signal receivers ran, in what order, how long.

.. code-block:: python

    import signaltrace

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    print(trace)

The public names are imported on first use, so importing ``signaltrace`` (as
pytest does for the plugin) neither imports nor configures Django.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._stats import stats
    from .capturing import capture, current_trace
    from .hook import install, is_installed, uninstall
    from .records import Dispatch, ErrorInfo, Origin, ReceiverCall, SkippedDispatch
    from .traces import Trace, Truncation

__all__ = [
    "Dispatch",
    "ErrorInfo",
    "Origin",
    "ReceiverCall",
    "SkippedDispatch",
    "Trace",
    "Truncation",
    "__version__",
    "capture",
    "current_trace",
    "install",
    "is_installed",
    "stats",
    "uninstall",
]

__version__ = "0.1.0.dev0"

_LAZY = {
    "Trace": "traces",
    "Truncation": "traces",
    "capture": "capturing",
    "current_trace": "capturing",
    "install": "hook",
    "is_installed": "hook",
    "uninstall": "hook",
    "Dispatch": "records",
    "ErrorInfo": "records",
    "Origin": "records",
    "ReceiverCall": "records",
    "SkippedDispatch": "records",
    "stats": "_stats",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'signaltrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

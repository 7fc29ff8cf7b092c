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
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture import Trace, capture, current_trace
    from .hook import install, is_installed, uninstall
    from .records import Dispatch, ErrorInfo, Origin, ReceiverCall, SkippedDispatch

__all__ = [
    "Dispatch",
    "ErrorInfo",
    "Origin",
    "ReceiverCall",
    "SkippedDispatch",
    "Trace",
    "__version__",
    "capture",
    "current_trace",
    "install",
    "is_installed",
    "uninstall",
]

__version__ = "0.1.0.dev0"

_LAZY = {
    "Trace": "capture",
    "capture": "capture",
    "current_trace": "capture",
    "install": "hook",
    "is_installed": "hook",
    "uninstall": "hook",
    "Dispatch": "records",
    "ErrorInfo": "records",
    "Origin": "records",
    "ReceiverCall": "records",
    "SkippedDispatch": "records",
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


class _Package(types.ModuleType):
    """Keeps ``signaltrace.capture`` the context manager.

    Importing the submodule ``signaltrace.capture`` makes Python set the
    package attribute ``capture`` to that module, which would shadow the lazily
    imported ``capture`` class. The submodule stays in ``sys.modules``.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""django-signaltrace: see which Django signal receivers ran, in what order, how long.

.. code-block:: python

    import signaltrace

    with signaltrace.capture() as trace:
        User.objects.create(username="ann")
    print(trace)
"""

from __future__ import annotations

from .capture import Trace, capture
from .hook import install, is_installed, uninstall
from .records import Dispatch, ErrorInfo, Origin, ReceiverCall

__all__ = [
    "Dispatch",
    "ErrorInfo",
    "Origin",
    "ReceiverCall",
    "Trace",
    "__version__",
    "capture",
    "install",
    "is_installed",
    "uninstall",
]

__version__ = "0.1.0.dev0"

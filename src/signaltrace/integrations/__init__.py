"""Integrations with other libraries, each in its own module, imported only when used.

- :mod:`signaltrace.integrations.celery`: one trace per Celery task in the
  worker, linked to the receiver call (and the trace) that enqueued it. On with
  ``SIGNALTRACE["CELERY"] = True`` (the ``celery`` extra), or by importing the
  module from your Celery app module.
"""

from __future__ import annotations

__all__ = ["install_celery", "uninstall_celery"]


def install_celery() -> None:
    """``SIGNALTRACE["CELERY"]``: enable the Celery integration (idempotent).

    Called by :func:`signaltrace.install` while the setting is true (the app
    registers it in ``ready()``). Imports Celery, an optional dependency.
    """
    from .celery import enable  # the optional dependency is imported here only

    enable()


def uninstall_celery() -> None:
    """Nothing to undo when :func:`signaltrace.uninstall` runs.

    The Celery handlers do nothing while the hook is uninstalled, and
    ``uninstall()`` itself puts Django's commit-hook methods back.
    """

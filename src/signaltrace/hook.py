"""Turn tracing on and off: :func:`install`, :func:`uninstall`, :func:`is_installed`.

:func:`install` replaces ``Signal.send``, ``send_robust``, ``asend`` and
``asend_robust`` on :class:`django.dispatch.Signal` (so signals created later
and third-party subclasses are traced too) with those of
:mod:`signaltrace._send`, and ``send``/``send_async`` on :class:`blinker.Signal`
with those of :mod:`signaltrace._blinker`; it also installs the DB probe,
skipped-operation detection and the wrapper of asgiref's
``SyncToAsync.__call__`` that carries a dispatch's origin across the thread hop.
:func:`uninstall` puts the originals back (the very same function objects).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import blinker as _blinker_lib
from asgiref.sync import SyncToAsync
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from . import _blinker, _bulk, _commit, _compat, _db, _hotpath, _metrics, _send
from .conf import validated_config

__all__ = ["install", "is_installed", "register_extra", "uninstall"]

_DJANGO_METHODS = ("send", "send_robust", "asend", "asend_robust")
_BLINKER_METHODS = ("send", "send_async")
_originals: dict[tuple[type, str], Any] = {}
#: Patches of higher layers that come and go with the hook, each behind a boolean
#: setting: ``(setting, install, uninstall)`` (``TRACE_COMMANDS``'s wrapper of
#: ``BaseCommand.execute``, registered by the app's ``ready()``).
_extras: list[tuple[str, Callable[[], None], Callable[[], None]]] = []


def register_extra(
    setting: str, install: Callable[[], None], uninstall: Callable[[], None]
) -> None:
    """Have :func:`install` call ``install()`` when ``setting`` is true, and
    :func:`uninstall` call ``uninstall()``. Both must be idempotent. Registering
    the same pair again does nothing."""
    extra = (setting, install, uninstall)
    if extra not in _extras:
        _extras.append(extra)


def install(*, blinker: bool | None = None) -> None:
    """Trace every Django (and, by default, blinker) signal dispatch.

    Idempotent. Raises :exc:`~django.core.exceptions.ImproperlyConfigured` if
    ``SIGNALTRACE`` is invalid or this Django's dispatch shape is unknown.

    :param blinker: also hook :class:`blinker.Signal`; defaults to the
        ``TRACE_BLINKER`` setting.

    .. versionadded:: 0.1.0
    """
    config = validated_config()
    if not _compat.SUPPORTED:
        raise ImproperlyConfigured("signaltrace supports Django 5.2 and newer.")
    for name in _DJANGO_METHODS:
        if (Signal, name) not in _originals:
            _originals[(Signal, name)] = Signal.__dict__[name]
            setattr(Signal, name, _send.REPLACEMENTS[name])
    if (SyncToAsync, "__call__") not in _originals:
        # Carries the awaiting code's origin across the thread hop (see hop_call).
        original = _originals[(SyncToAsync, "__call__")] = SyncToAsync.__dict__["__call__"]
        SyncToAsync.__call__ = _hotpath.hop_call(original)  # type: ignore[method-assign]
    _db.install()
    _commit.install()  # only once an integration wants it (the Celery one)
    trace_blinker = config["TRACE_BLINKER"] if blinker is None else blinker
    if trace_blinker:
        blinker_cls = _blinker_lib.Signal
        for name in _BLINKER_METHODS:
            if (blinker_cls, name) not in _originals:
                _originals[(blinker_cls, name)] = blinker_cls.__dict__[name]
                setattr(blinker_cls, name, _blinker.REPLACEMENTS[name])
    if config["DETECT_SKIPPED"]:
        _bulk.install()
    for setting, install_extra, _uninstall_extra in _extras:
        if config[setting]:
            install_extra()
    _metrics.refresh()  # METRICS, read again on setting_changed and at each capture()


def uninstall() -> None:
    """Put Django's and blinker's own send methods back. Idempotent.

    .. versionadded:: 0.1.0
    """
    for (cls, name), original in list(_originals.items()):
        setattr(cls, name, original)
        del _originals[(cls, name)]
    _db.uninstall()
    _commit.uninstall()
    _bulk.uninstall()
    for _setting, _install_extra, uninstall_extra in _extras:
        uninstall_extra()


def is_installed() -> bool:
    """Whether :func:`install` is in effect.

    .. versionadded:: 0.1.0
    """
    return bool(_originals)

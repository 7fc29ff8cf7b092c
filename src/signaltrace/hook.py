"""Turn tracing on and off: :func:`install`, :func:`uninstall`, :func:`is_installed`.

:func:`install` replaces ``Signal.send``, ``send_robust``, ``asend`` and
``asend_robust`` on :class:`django.dispatch.Signal` (so signals created later
and third-party subclasses are traced too) with those of
:mod:`signaltrace._send`, and ``send``/``send_async`` on :class:`blinker.Signal`
with those of :mod:`signaltrace._blinker`; it also installs the DB probe and
skipped-operation detection. :func:`uninstall` puts the originals back (the
very same function objects).
"""

from __future__ import annotations

from typing import Any

import blinker as _blinker_lib
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal

from . import _blinker, _bulk, _compat, _db, _send
from .conf import validated_config

__all__ = ["install", "is_installed", "uninstall"]

_DJANGO_METHODS = ("send", "send_robust", "asend", "asend_robust")
_BLINKER_METHODS = ("send", "send_async")
_originals: dict[tuple[type, str], Any] = {}


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
    _db.install()
    trace_blinker = config["TRACE_BLINKER"] if blinker is None else blinker
    if trace_blinker:
        blinker_cls = _blinker_lib.Signal
        for name in _BLINKER_METHODS:
            if (blinker_cls, name) not in _originals:
                _originals[(blinker_cls, name)] = blinker_cls.__dict__[name]
                setattr(blinker_cls, name, _blinker.REPLACEMENTS[name])
    if config["DETECT_SKIPPED"]:
        _bulk.install()


def uninstall() -> None:
    """Put Django's and blinker's own send methods back. Idempotent.

    .. versionadded:: 0.1.0
    """
    for (cls, name), original in list(_originals.items()):
        setattr(cls, name, original)
        del _originals[(cls, name)]
    _db.uninstall()
    _bulk.uninstall()


def is_installed() -> bool:
    """Whether :func:`install` is in effect.

    .. versionadded:: 0.1.0
    """
    return bool(_originals)

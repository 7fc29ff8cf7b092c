"""The ``SIGNALTRACE`` settings dict: defaults, merging and validation.

All settings live in one dict; every key has a default here and a paragraph in
``docs/reference/settings.md``. :func:`get_config` merges the user's dict over
:data:`DEFAULTS` and caches the result for as long as ``settings.SIGNALTRACE``
(and ``DEBUG``) are the same, so ``override_settings`` is picked up without connecting a
receiver to ``setting_changed`` (signaltrace never connects receivers of its
own: they would change ``has_listeners()`` and show up in traces).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["DEFAULTS", "SETTING_TYPES", "config_errors", "get_config", "validated_config"]

_UNSET: Final = object()

#: Default values. ``ENABLED`` defaults to ``settings.DEBUG`` (resolved in
#: :func:`get_config`).
DEFAULTS: Final[Mapping[str, Any]] = {
    "ENABLED": None,
    "IGNORE_SIGNALS": (
        "django.db.models.signals.pre_init",
        "django.db.models.signals.post_init",
    ),
    "RECORD_EMPTY": False,
    "RECORD_ORIGIN": True,
    "MAX_EVENTS": 10_000,
    "REDACT": ("password", "secret", "token", "key", "authorization"),
    "TRACE_BLINKER": True,
}

#: Expected type of each key, as ``(types, description)``.
SETTING_TYPES: Final[Mapping[str, tuple[tuple[type, ...], str]]] = {
    "ENABLED": ((bool,), "a bool"),
    "IGNORE_SIGNALS": ((list, tuple), "a list of dotted paths to signals"),
    "RECORD_EMPTY": ((bool,), "a bool"),
    "RECORD_ORIGIN": ((bool,), "a bool"),
    "MAX_EVENTS": ((int,), "a positive int"),
    "REDACT": ((list, tuple), "a list of strings (case-insensitive substrings)"),
    "TRACE_BLINKER": ((bool,), "a bool"),
}

_cache: tuple[object, bool, dict[str, Any]] | None = None


def _user_settings() -> object:
    return getattr(settings, "SIGNALTRACE", _UNSET)


def config_errors(user: object) -> list[tuple[str, str, str | None]]:
    """Problems with a ``SIGNALTRACE`` value, as ``(key, message, hint)``."""
    if user is _UNSET or user is None:
        return []
    if not isinstance(user, Mapping):
        return [("", f"SIGNALTRACE must be a dict, not {type(user).__name__}.", None)]
    errors: list[tuple[str, str, str | None]] = []
    for key, value in user.items():
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
            hint = f"Did you mean {close[0]!r}?" if close else f"Valid keys: {', '.join(DEFAULTS)}."
            errors.append((str(key), f"SIGNALTRACE[{key!r}] is not a known setting.", hint))
            continue
        types, description = SETTING_TYPES[key]
        bad = not isinstance(value, types) or (bool not in types and isinstance(value, bool))
        if not bad and key == "MAX_EVENTS":
            bad = value < 1
        if not bad and key in ("IGNORE_SIGNALS", "REDACT"):
            bad = not all(isinstance(item, str) for item in value)
        if bad:
            errors.append(
                (
                    key,
                    f"SIGNALTRACE[{key!r}] must be {description}, "
                    f"got {type(value).__name__}: {value!r}.",
                    None,
                )
            )
    return errors


def get_config() -> dict[str, Any]:
    """The merged settings (defaults, then ``SIGNALTRACE``), without validation."""
    global _cache
    user = _user_settings()
    debug = bool(getattr(settings, "DEBUG", False))
    cached = _cache
    if cached is not None and cached[0] is user and cached[1] is debug:
        return cached[2]
    merged = dict(DEFAULTS)
    if isinstance(user, Mapping):
        merged.update(user)
    if merged["ENABLED"] is None:
        merged["ENABLED"] = debug
    _cache = (user, debug, merged)
    return merged


def validated_config() -> dict[str, Any]:
    """:func:`get_config`, raising :exc:`ImproperlyConfigured` on the first error."""
    errors = config_errors(_user_settings())
    if errors:
        _key, message, hint = errors[0]
        raise ImproperlyConfigured(f"{message} {hint}" if hint else message)
    return get_config()

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
import importlib.util
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
    "RECORD_DB": None,
    "MAX_EVENTS": 10_000,
    "REDACT": ("password", "secret", "token", "key", "authorization"),
    "TRACE_BLINKER": True,
    # Per-request tracing (middleware, sinks, viewer).
    "BUFFER_SIZE": 100,
    "SLOW_MS": 50,
    "SHOW_CALLBACK": "signaltrace.middleware.show_trace",
    "CONSOLE": None,
    "SERVER_TIMING": True,
    "LOG_LEVEL": "info",
    "LOG_PROBLEM_LEVEL": "warning",
    "LOG_FIELDS": None,
    "SINKS": (),
    "SAMPLE_RATE": 1.0,
    # Integrations (issue 7).
    "OTEL": False,
    # Diagnostics (skipped signals, system checks).
    "DETECT_SKIPPED": True,
    "SKIPPED_WARNING": False,
    "CHECK_SENDERLESS": True,
}

#: Levels ``LOG_LEVEL`` and ``LOG_PROBLEM_LEVEL`` accept.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")

#: Fields of the ``signaltrace.request`` event that ``LOG_FIELDS`` can select.
LOG_FIELD_NAMES: Final = (
    "trace_id",
    "method",
    "path",
    "view",
    "status",
    "duration_ms",
    "dispatches",
    "receiver_calls",
    "receiver_ms",
    "slowest",
    "receivers",
    "errors",
    "skipped",
    "dropped",
)

#: Expected type of each key, as ``(types, description)``.
SETTING_TYPES: Final[Mapping[str, tuple[tuple[type, ...], str]]] = {
    "ENABLED": ((bool,), "a bool"),
    "IGNORE_SIGNALS": ((list, tuple), "a list of dotted paths to signals"),
    "RECORD_EMPTY": ((bool, str), 'a bool or "nested"'),
    "RECORD_ORIGIN": ((bool,), "a bool"),
    "RECORD_DB": ((bool,), "a bool"),
    "MAX_EVENTS": ((int,), "a positive int"),
    "REDACT": ((list, tuple), "a list of strings (case-insensitive substrings)"),
    "TRACE_BLINKER": ((bool,), "a bool"),
    "BUFFER_SIZE": ((int,), "an int >= 0"),
    "SLOW_MS": ((int, float), "a number >= 0 (milliseconds)"),
    "SHOW_CALLBACK": ((str, object), "a dotted path to a callable, or a callable"),
    "CONSOLE": ((bool, type(None)), "a bool or None"),
    "SERVER_TIMING": ((bool,), "a bool"),
    "LOG_LEVEL": ((str, type(None)), f"None or one of {', '.join(LOG_LEVELS)}"),
    "LOG_PROBLEM_LEVEL": ((str,), f"one of {', '.join(LOG_LEVELS)}"),
    "LOG_FIELDS": (
        (list, tuple, type(None)),
        f"None or a list of field names from {', '.join(LOG_FIELD_NAMES)}",
    ),
    "SINKS": ((list, tuple), "a list of dotted paths to sinks"),
    "SAMPLE_RATE": ((int, float), "a number from 0 to 1"),
    "OTEL": ((bool,), 'a bool (True needs the otel extra: pip install "django-signaltrace[otel]")'),
    "DETECT_SKIPPED": ((bool,), "a bool"),
    "SKIPPED_WARNING": ((bool,), "a bool"),
    "CHECK_SENDERLESS": (
        (bool, list, tuple),
        "a bool, or a list of dotted receiver names not to report",
    ),
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
        if not bad and key == "RECORD_EMPTY":
            bad = isinstance(value, str) and value != "nested"
        if not bad and key == "MAX_EVENTS":
            bad = value < 1
        if not bad and key in ("IGNORE_SIGNALS", "REDACT", "SINKS"):
            bad = not all(isinstance(item, str) for item in value)
        if not bad:
            bad = _request_setting_invalid(key, value)
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


def _request_setting_invalid(key: str, value: Any) -> bool:
    """Range and membership checks for the per-request settings."""
    if key in ("BUFFER_SIZE", "SLOW_MS"):
        return bool(value < 0)
    if key == "SAMPLE_RATE":
        return not 0 <= value <= 1
    if key == "SHOW_CALLBACK":
        return not (isinstance(value, str) or callable(value))
    if key in ("LOG_LEVEL", "LOG_PROBLEM_LEVEL"):
        return value is not None and value not in LOG_LEVELS
    if key == "LOG_FIELDS":
        return value is not None and not all(item in LOG_FIELD_NAMES for item in value)
    if key == "OTEL":
        return bool(value) and _otel_missing()
    return False


def _otel_missing() -> bool:
    """Whether the OpenTelemetry API is not installed (imports no more than its namespace)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is None
    except ImportError:
        return True


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
    if merged["RECORD_DB"] is None:
        merged["RECORD_DB"] = debug
    _cache = (user, debug, merged)
    return merged


def validated_config() -> dict[str, Any]:
    """:func:`get_config`, raising :exc:`ImproperlyConfigured` on the first error."""
    errors = config_errors(_user_settings())
    if errors:
        _key, message, hint = errors[0]
        raise ImproperlyConfigured(f"{message} {hint}" if hint else message)
    return get_config()

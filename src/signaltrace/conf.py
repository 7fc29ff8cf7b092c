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
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import Signal
from django.utils.module_loading import import_string

__all__ = [
    "DEFAULTS",
    "SETTING_TYPES",
    "config_errors",
    "get_config",
    "user_settings",
    "validated_config",
]

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
    "RECORD_SQL": None,
    "RECORD_SQL_PARAMS": False,
    "MAX_EVENTS": 10_000,
    "REDACT": ("password", "secret", "token", "key", "authorization"),
    "TRACE_BLINKER": True,
    # Per-request tracing (middleware, sinks, viewer).
    "BUFFER_SIZE": 100,
    "SLOW_MS": 50,
    "SHOW_CALLBACK": "signaltrace.middleware.show_trace",
    "CONSOLE": "auto",
    "SERVER_TIMING": True,
    "LOG_LEVEL": "info",
    "LOG_PROBLEM_LEVEL": "warning",
    "LOG_FIELDS": None,
    "SINKS": (),
    "SAMPLE_RATE": 1.0,
    "SINK_QUEUE_SIZE": 100,
    "SINK_TIMEOUT_MS": 1000,
    # Stores and kinds of traces (signaltrace.stores, TRACE_COMMANDS).
    "STORE": "signaltrace.stores.MemoryStore",
    "STORE_OPTIONS": MappingProxyType({}),
    "TRACE_COMMANDS": False,
    # Integrations (issue 7).
    "OTEL": False,
    "CELERY": False,
    # Always-on receiver metrics (signaltrace.metrics).
    "METRICS": False,
    # Diagnostics (skipped signals, system checks).
    "DETECT_SKIPPED": True,
    "SKIPPED_WARNING": False,
    "CHECK_SENDERLESS": True,
}

#: Values ``CONSOLE`` accepts besides ``None`` (off) and the bools (``True``:
#: ``"all"``, ``False``: off). ``"auto"``: ``"dispatches"`` under ``runserver``
#: with ``DEBUG``, off elsewhere.
CONSOLE_MODES: Final = ("auto", "all", "dispatches", "problems")

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
    "RECORD_SQL": ((bool,), "a bool"),
    "RECORD_SQL_PARAMS": ((bool,), "a bool"),
    "MAX_EVENTS": ((int,), "a positive int"),
    "REDACT": ((list, tuple), "a list of strings (case-insensitive substrings)"),
    "TRACE_BLINKER": ((bool,), "a bool"),
    "BUFFER_SIZE": ((int,), "an int >= 0"),
    "SLOW_MS": ((int, float), "a number >= 0 (milliseconds)"),
    "SHOW_CALLBACK": ((str, object), "a dotted path to a callable, or a callable"),
    "CONSOLE": (
        (str, bool, type(None)),
        'one of "auto", "all", "dispatches", "problems" or None (off); '
        'True means "all" and False means None',
    ),
    "SERVER_TIMING": ((bool,), "a bool"),
    "LOG_LEVEL": ((str, type(None)), f"None or one of {', '.join(LOG_LEVELS)}"),
    "LOG_PROBLEM_LEVEL": ((str,), f"one of {', '.join(LOG_LEVELS)}"),
    "LOG_FIELDS": (
        (list, tuple, type(None)),
        f"None or a list of field names from {', '.join(LOG_FIELD_NAMES)}",
    ),
    "SINKS": ((list, tuple), "a list of dotted paths to sinks"),
    "SAMPLE_RATE": ((int, float), "a number from 0 to 1"),
    "SINK_QUEUE_SIZE": ((int,), "an int >= 1"),
    "SINK_TIMEOUT_MS": ((int, float, type(None)), "None or a number > 0 (milliseconds)"),
    "STORE": (
        (str,),
        "the dotted path of a store class, such as 'signaltrace.stores.CacheStore'",
    ),
    "STORE_OPTIONS": ((dict,), "a dict of the store's options"),
    "TRACE_COMMANDS": ((bool,), "a bool"),
    "OTEL": ((bool,), 'a bool (True needs the otel extra: pip install "django-signaltrace[otel]")'),
    "CELERY": (
        (bool,),
        'a bool (True needs Celery: pip install "django-signaltrace[celery]")',
    ),
    "METRICS": ((bool,), "a bool"),
    "DETECT_SKIPPED": ((bool,), "a bool"),
    "SKIPPED_WARNING": ((bool,), "a bool"),
    "CHECK_SENDERLESS": (
        (bool, list, tuple),
        "a bool, or a list of dotted receiver names not to report",
    ),
}

_cache: tuple[object, bool, dict[str, Any]] | None = None


def user_settings() -> object:
    """``settings.SIGNALTRACE`` as given, or a sentinel if it is not set.

    Pass it to :func:`config_errors`; the sentinel means "no errors".
    """
    return getattr(settings, "SIGNALTRACE", _UNSET)


#: Longest ``repr`` of a value quoted in an error message.
_REPR_LIMIT: Final = 200

_SHOW_CALLBACK_HINT: Final = (
    "Give a function taking the request, or its dotted path, such as "
    "'signaltrace.middleware.show_trace'."
)
_IGNORE_SIGNALS_HINT: Final = (
    "Give the dotted path of a signal, such as 'django.db.models.signals.pre_init'."
)

_Error = tuple[str, str, str | None]


def _safe_repr(value: object) -> str:
    """``repr(value)`` that cannot raise, cut to :data:`_REPR_LIMIT` characters."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{_type_name(value)} object>"
    return _cut(text)


def _cut(text: str) -> str:
    """``text``, cut to :data:`_REPR_LIMIT` characters."""
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _type_name(value: object) -> str:
    name = getattr(type(value), "__name__", None)
    return name if isinstance(name, str) else "object"


def _safe_str(value: object) -> str:
    """``str(value)`` that cannot raise (falls back to :func:`_safe_repr`)."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


def _error_text(err: BaseException) -> str:
    """``"Type: message"`` for an exception, cut to :data:`_REPR_LIMIT` characters."""
    return _cut(f"{_type_name(err)}: {_safe_str(err)}")


def _unknown_key_hint(key: str) -> str:
    """The hint for an unknown key: a case-insensitive match, then the closest key."""
    upper = key.upper()
    if upper in DEFAULTS:
        return f"Did you mean {upper!r}?"
    close = difflib.get_close_matches(upper, list(DEFAULTS), n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Valid keys: {', '.join(DEFAULTS)}."


def config_errors(user: object) -> list[tuple[str, str, str | None]]:
    """Problems with a ``SIGNALTRACE`` value, as ``(key, message, hint)``.

    Imports the dotted paths given for ``SHOW_CALLBACK`` and ``IGNORE_SIGNALS``
    to check what they name (a callable taking the request, signals). A path
    that raises :exc:`ImportError` is not reported here: the system checks
    ``signaltrace.E100`` and ``signaltrace.E004`` report it, and at run time it
    is skipped and logged. Any other exception raised while importing is
    reported here.
    """
    if user is _UNSET or user is None:
        return []
    if not isinstance(user, Mapping):
        return [("", f"SIGNALTRACE must be a dict, not {_type_name(user)}.", None)]
    errors: list[_Error] = []
    for key, value in user.items():
        if key not in DEFAULTS:
            name = _safe_str(key)
            errors.append(
                (
                    name,
                    f"SIGNALTRACE[{_safe_repr(key)}] is not a known setting.",
                    _unknown_key_hint(name),
                )
            )
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
            errors.append((key, _must_be(key, description, value), None))
        elif key == "SHOW_CALLBACK":
            errors.extend(_show_callback_errors(value, description))
        elif key == "IGNORE_SIGNALS":
            errors.extend(_ignore_signals_errors(value))
    errors.extend(_store_errors(user, errors))
    return errors


def _must_be(key: str, description: str, value: object) -> str:
    """The standard message: ``SIGNALTRACE['KEY'] must be ..., got type: value.``"""
    return (
        f"SIGNALTRACE[{key!r}] must be {description}, got {_type_name(value)}: {_safe_repr(value)}."
    )


def _show_callback_errors(value: object, description: str) -> list[_Error]:
    """What is wrong with a ``SHOW_CALLBACK`` that has the right type, if anything."""
    key = "SHOW_CALLBACK"
    target = value
    if isinstance(value, str):
        try:
            target = import_string(value)
        except ImportError:
            return []  # signaltrace.E100
        except Exception as err:
            message = (
                f"SIGNALTRACE[{key!r}] {_safe_repr(value)} does not import: {_error_text(err)}"
            )
            return [(key, message, _SHOW_CALLBACK_HINT)]
    if not callable(target):
        hint = None
        if isinstance(value, str):
            hint = (
                f"{_safe_repr(value)} names {_type_name(target)}: {_safe_repr(target)}, "
                f"which is not callable. {_SHOW_CALLBACK_HINT}"
            )
        return [(key, _must_be(key, description, value), hint)]
    try:
        signature = inspect.signature(target)
    except Exception:
        return []  # no signature to read (some builtins): accept it
    try:
        signature.bind(object())
    except TypeError:
        subject = f"{_safe_repr(value)} names a callable that" if isinstance(value, str) else "It"
        hint = (
            f"{subject} cannot be called with one positional argument (the request): "
            f"its signature is {_cut(_safe_str(signature))}. {_SHOW_CALLBACK_HINT}"
        )
        return [(key, _must_be(key, description, value), hint)]
    return []


def _ignore_signals_errors(paths: list[str] | tuple[str, ...]) -> list[_Error]:
    """``IGNORE_SIGNALS`` entries that import but are not signals (one error each)."""
    key = "IGNORE_SIGNALS"
    errors: list[_Error] = []
    for path in paths:
        try:
            target = import_string(path)
        except ImportError:
            continue  # signaltrace.E004
        except Exception as err:
            message = (
                f"SIGNALTRACE[{key!r}] entry {_safe_repr(path)} does not import: {_error_text(err)}"
            )
            errors.append((key, message, _IGNORE_SIGNALS_HINT))
            continue
        if not _is_signal(target):
            message = (
                f"SIGNALTRACE[{key!r}] entry {_safe_repr(path)} must be a "
                f"django.dispatch.Signal or blinker.Signal, "
                f"got {_type_name(target)}: {_safe_repr(target)}."
            )
            errors.append((key, message, _IGNORE_SIGNALS_HINT))
    return errors


#: What a store class must have (see ``signaltrace.stores.Store``).
STORE_METHODS: Final = ("save", "get", "recent", "clear")
_STORE_HINT: Final = (
    "Give the dotted path of a store class, such as 'signaltrace.stores.MemoryStore', "
    "'signaltrace.stores.CacheStore' or 'signaltrace.stores.DatabaseStore'."
)


def _store_errors(user: Mapping[Any, Any], found: list[_Error]) -> list[_Error]:
    """What is wrong with ``STORE`` and ``STORE_OPTIONS`` once their types are right.

    Imports the store class to check it has the store methods, then asks it
    (its ``option_errors`` classmethod, if it has one) about ``STORE_OPTIONS``.
    A path that raises :exc:`ImportError` is left to check ``signaltrace.E102``.
    """
    if "STORE" not in user and "STORE_OPTIONS" not in user:
        return []
    if any(key in ("STORE", "STORE_OPTIONS") for key, _message, _hint in found):
        return []
    path = user.get("STORE", DEFAULTS["STORE"])
    try:
        target = import_string(path)
    except ImportError:
        return []  # signaltrace.E102
    except Exception as err:
        message = f"SIGNALTRACE['STORE'] {_safe_repr(path)} does not import: {_error_text(err)}"
        return [("STORE", message, _STORE_HINT)]
    missing = [name for name in STORE_METHODS if not callable(getattr(target, name, None))]
    if not isinstance(target, type) or missing:
        what = f"{_type_name(target)}: {_safe_repr(target)}"
        lacks = f", without {', '.join(missing)}" if missing else ""
        methods = f"{', '.join(STORE_METHODS[:-1])} and {STORE_METHODS[-1]}"
        message = (
            f"SIGNALTRACE['STORE'] {_safe_repr(path)} must name a store class (with "
            f"{methods} methods), got {what}{lacks}."
        )
        return [("STORE", message, _STORE_HINT)]
    check = getattr(target, "option_errors", None)
    if not callable(check):
        return []
    try:
        problems = list(check(user.get("STORE_OPTIONS", {})))
    except Exception as err:
        problems = [f" could not be checked by {path}: {_error_text(err)}"]
    return [
        ("STORE_OPTIONS", f"SIGNALTRACE['STORE_OPTIONS']{_option_text(problem)}", None)
        for problem in problems
    ]


def _option_text(problem: object) -> str:
    """A store's message about an option, after ``SIGNALTRACE['STORE_OPTIONS']``."""
    text = _cut(_safe_str(problem))
    return text if text.startswith(("[", " ")) else f": {text}"


def _is_signal(value: object) -> bool:
    """Whether ``value`` is a Django or blinker signal (blinker is not imported here)."""
    if isinstance(value, Signal):
        return True
    blinker = sys.modules.get("blinker")
    blinker_signal = getattr(blinker, "Signal", None)
    return isinstance(blinker_signal, type) and isinstance(value, blinker_signal)


def _request_setting_invalid(key: str, value: Any) -> bool:
    """Range and membership checks for the per-request settings."""
    if key == "BUFFER_SIZE":
        return bool(value < 0)
    if key == "SLOW_MS":
        return _not_finite(value) or bool(value < 0)
    if key == "SAMPLE_RATE":
        return _not_finite(value) or not 0 <= value <= 1
    if key == "SINK_QUEUE_SIZE":
        return bool(value < 1)
    if key == "SINK_TIMEOUT_MS":
        return value is not None and (_not_finite(value) or value <= 0)
    if key == "SHOW_CALLBACK":
        return not (isinstance(value, str) or callable(value))
    if key == "CONSOLE":
        return isinstance(value, str) and value not in CONSOLE_MODES
    if key in ("LOG_LEVEL", "LOG_PROBLEM_LEVEL"):
        return value is not None and value not in LOG_LEVELS
    if key == "LOG_FIELDS":
        return value is not None and not all(item in LOG_FIELD_NAMES for item in value)
    if key == "OTEL":
        return bool(value) and _otel_missing()
    if key == "CELERY":
        return bool(value) and _celery_missing()
    return False


def _celery_missing() -> bool:
    """Whether Celery is not installed (found, not imported)."""
    try:
        return importlib.util.find_spec("celery") is None
    except ImportError:  # pragma: no cover - only a broken parent package raises
        return True


def _not_finite(value: int | float) -> bool:
    """Whether ``value`` is a float NaN or infinity (ints are always finite)."""
    return isinstance(value, float) and not math.isfinite(value)


def _otel_missing() -> bool:
    """Whether the OpenTelemetry API is not installed (imports no more than its namespace)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is None
    except ImportError:
        return True


#: Called, without arguments, when :func:`get_config` finds a new ``SIGNALTRACE``
#: dict (or another ``DEBUG``) after it had read the settings before, however
#: the dict was replaced (``override_settings``, or assigned to
#: ``django.conf.settings``, which sends no ``setting_changed``):
#: :func:`signaltrace._metrics.refresh` re-reads ``METRICS`` there, so the next
#: request, capture or metrics read notices it. Each must never raise.
ON_CHANGE: Final[list[Callable[[], object]]] = []


def get_config() -> dict[str, Any]:
    """The merged settings (defaults, then ``SIGNALTRACE``), without validation."""
    global _cache
    user = user_settings()
    debug = bool(getattr(settings, "DEBUG", False))
    cached = _cache
    if cached is not None and cached[0] is user and cached[1] is debug:
        return cached[2]
    merged = _merge(user, debug)
    _cache = (user, debug, merged)
    if cached is not None:
        for watcher in ON_CHANGE:
            watcher()
    return merged


def _merge(user: object, debug: bool) -> dict[str, Any]:
    """The defaults updated with ``user``, the ``DEBUG``-dependent ones worked out."""
    merged = dict(DEFAULTS)
    if isinstance(user, Mapping):
        merged.update(user)
    if merged["ENABLED"] is None:
        merged["ENABLED"] = debug
    if merged["RECORD_DB"] is None:
        merged["RECORD_DB"] = debug
    if merged["RECORD_SQL"] is None:
        merged["RECORD_SQL"] = debug
    return merged


def validated_config() -> dict[str, Any]:
    """:func:`get_config`, raising :exc:`ImproperlyConfigured` if there are errors.

    The exception lists every error of :func:`config_errors`, one a line, each
    followed by its hint.
    """
    errors = config_errors(user_settings())
    if errors:
        raise ImproperlyConfigured(
            "\n".join(f"{message} {hint}" if hint else message for _key, message, hint in errors)
        )
    return get_config()

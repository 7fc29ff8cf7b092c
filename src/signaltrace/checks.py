"""Every system check signaltrace registers, and :func:`register`, which ``ready()`` calls.

Settings (tag ``compatibility``):

- ``signaltrace.E001``: an unknown key (the hint names the closest valid key).
- ``signaltrace.E002``: a key whose value has the wrong type or range.
- ``signaltrace.E003``: ``SIGNALTRACE`` is not a dict.
- ``signaltrace.E004``: an ``IGNORE_SIGNALS`` entry does not import.

Per-request tracing (tag ``compatibility``):

- ``signaltrace.W100``: the middleware is not first in ``MIDDLEWARE``.
- ``signaltrace.E100``: ``SHOW_CALLBACK`` does not import.
- ``signaltrace.E101``: a ``SINKS`` entry does not import or is not a sink.
- ``signaltrace.E102``: ``STORE`` does not import.

Receivers (tag ``signals``):

- ``signaltrace.W001``: an installed app has a ``signals.py`` or
  ``receivers.py`` (or a ``signals``/``receivers`` package) whose
  ``@receiver`` functions never connected, because nothing imported it. Found
  by reading the source with :mod:`ast`; the module is not imported.
- ``signaltrace.W002``: one function (same module, name and code) is
  connected twice to one signal for overlapping senders, so it runs twice:
  its module was imported twice, or ``connect()`` ran twice without a
  ``dispatch_uid``.
- ``signaltrace.I001``: a receiver of a model signal (``pre_save``,
  ``post_delete``, ``m2m_changed``...) connected without ``sender=`` runs for
  every model. :setting:`CHECK_SENDERLESS` turns it off or lists receivers it
  should leave alone.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Warning
from django.db.models.signals import ModelSignal
from django.utils.module_loading import import_string

from . import naming, sinks
from .conf import DEFAULTS, config_errors, get_config, user_settings
from .diagnostics._source import receiver_functions
from .diagnostics.discovery import discover_signals
from .introspection import Connection, connections, sender_candidates, sender_text
from .middleware import PATH

__all__ = [
    "check_duplicate_receivers",
    "check_middleware",
    "check_senderless_receivers",
    "check_settings",
    "check_unimported_signals",
    "register",
]


def register() -> None:
    """Register every check above with Django (called once, by ``AppConfig.ready()``)."""
    checks.register(check_settings, checks.Tags.compatibility)
    checks.register(check_middleware, checks.Tags.compatibility)
    checks.register(check_unimported_signals, checks.Tags.signals)
    checks.register(check_duplicate_receivers, checks.Tags.signals)
    checks.register(check_senderless_receivers, checks.Tags.signals)


# -- settings -------------------------------------------------------------------


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """One error per bad ``SIGNALTRACE`` key."""
    user = user_settings()
    errors: list[CheckMessage] = []
    for key, message, hint in config_errors(user):
        if not key:
            check_id = "signaltrace.E003"
        elif key in DEFAULTS:
            check_id = "signaltrace.E002"
        else:
            check_id = "signaltrace.E001"
        errors.append(Error(message, hint=hint, id=check_id))
    if not errors and isinstance(user, dict):
        for path in user.get("IGNORE_SIGNALS", ()):
            try:
                import_string(path)
            except ImportError as err:
                errors.append(
                    Error(
                        f"SIGNALTRACE['IGNORE_SIGNALS'] entry {path!r} does not import: {err}",
                        hint="Give the dotted path of a signal, such as "
                        "'django.db.models.signals.pre_init'.",
                        id="signaltrace.E004",
                    )
                )
    return errors


# -- per-request tracing ----------------------------------------------------------


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """System checks for per-request tracing.

    - ``signaltrace.W100``: the middleware is not first in ``MIDDLEWARE``.
    - ``signaltrace.E100``: ``SHOW_CALLBACK`` does not import.
    - ``signaltrace.E101``: a ``SINKS`` entry does not import or is not a sink.
    - ``signaltrace.E102``: ``STORE`` does not import.

    .. versionadded:: 0.1.0
    """
    messages: list[CheckMessage] = []
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if PATH in middleware and middleware.index(PATH) != 0:
        messages.append(
            Warning(
                f"{PATH} is not the first entry in MIDDLEWARE.",
                hint="Signals sent by the middleware listed before it (SessionMiddleware "
                "saving a session, for one) are missing from request traces. Move it to "
                "the top unless that is what you want.",
                id="signaltrace.W100",
            )
        )
    if config_errors(user_settings()):
        return messages  # reported by check_settings
    config = get_config()
    callback = config["SHOW_CALLBACK"]
    if isinstance(callback, str):
        try:
            import_string(callback)
        except ImportError as err:
            messages.append(
                Error(
                    f"SIGNALTRACE['SHOW_CALLBACK'] {callback!r} does not import: {err}",
                    hint="Give the dotted path of a function taking the request, such as "
                    "'signaltrace.middleware.show_trace'.",
                    id="signaltrace.E100",
                )
            )
    for path in config["SINKS"]:
        try:
            sinks.load_sink(path)
        except Exception as err:
            messages.append(
                Error(
                    f"SIGNALTRACE['SINKS'] entry {path!r} cannot be used: {err}",
                    hint="Give the dotted path of a class (or object) with an emit(trace) method.",
                    id="signaltrace.E101",
                )
            )
    store = config["STORE"]
    try:
        import_string(store)
    except ImportError as err:
        messages.append(
            Error(
                f"SIGNALTRACE['STORE'] {store!r} does not import: {err}",
                hint="Give the dotted path of a store class, such as "
                "'signaltrace.stores.CacheStore'. Until then no trace is kept for the viewer.",
                id="signaltrace.E102",
            )
        )
    return messages


# -- receivers ----------------------------------------------------------------------

_MODULE_NAMES = ("signals", "receivers")


def _candidate_modules(app_config: AppConfig) -> list[tuple[str, str]]:
    """``(module name, file)`` of the app's signals/receivers modules that exist."""
    found = []
    for name in _MODULE_NAMES:
        base = os.path.join(app_config.path, name)
        if os.path.isfile(base + ".py"):
            found.append((f"{app_config.name}.{name}", base + ".py"))
        elif os.path.isdir(base):
            for entry in sorted(os.listdir(base)):
                stem, ext = os.path.splitext(entry)
                if ext == ".py" and stem.isidentifier():
                    module = f"{app_config.name}.{name}"
                    found.append(
                        (
                            module if stem == "__init__" else f"{module}.{stem}",
                            os.path.join(base, entry),
                        )
                    )
    return found


def _ready_hint(app_config: AppConfig, module: str) -> str:
    relative = "." + module[len(app_config.name) + 1 :]
    statement = f"from {relative.rsplit('.', 1)[0] or '.'} import {relative.rsplit('.', 1)[1]}"
    cls = type(app_config)
    if cls is AppConfig:
        return (
            f"{app_config.name} has no AppConfig of its own: add one in "
            f"{app_config.name}.apps whose ready() runs `{statement}  # noqa: F401`."
        )
    return f"Import it in {naming.type_label(cls)}.ready(): `{statement}  # noqa: F401`."


def check_unimported_signals(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``signaltrace.W001`` for each signals module with receivers that was never imported.

    .. versionadded:: 0.1.0
    """
    messages: list[CheckMessage] = []
    for app_config in apps.get_app_configs() if app_configs is None else app_configs:
        for module, filename in _candidate_modules(app_config):
            if module in sys.modules:
                continue
            functions = receiver_functions(filename)
            if not functions:
                continue
            names = ", ".join(name for name, _line in functions)
            messages.append(
                checks.Warning(
                    f"{module} defines @receiver functions ({names}) but was never "
                    "imported, so they are not connected and never run.",
                    hint=_ready_hint(app_config, module),
                    obj=module,
                    id="signaltrace.W001",
                )
            )
    return messages


def _identity(receiver: object) -> tuple[str, str | None, int | None] | None:
    """Qualname and real code location of a plain function receiver, else None.

    The module name is left out on purpose: a module imported under two names
    (``shop.signals`` and ``signals``) gives two functions with the same code
    location and different ``__module__``, and that is the duplicate to report.
    """
    if type(receiver) is not types.FunctionType:
        return None
    name, filename, lineno = naming.describe_receiver(receiver)
    if "<locals>" in name:
        return None  # closures made per sender by a factory are distinct on purpose
    return receiver.__qualname__, os.path.realpath(filename) if filename else None, lineno


def _overlap(a: Connection, b: Connection) -> bool:
    return a.any_sender or b.any_sender or a.sender_key == b.sender_key


def check_duplicate_receivers(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``signaltrace.W002`` for a function connected twice to one signal.

    .. versionadded:: 0.1.0
    """
    messages: list[CheckMessage] = []
    candidates = sender_candidates()
    for info in discover_signals():
        groups: dict[tuple[str, str | None, int | None], list[Connection]] = {}
        for connection in connections(info.signal, candidates):
            identity = _identity(connection.receiver)
            if identity is not None:
                groups.setdefault(identity, []).append(connection)
        for (_qualname, filename, lineno), group in groups.items():
            pairs = [(a, b) for i, a in enumerate(group) for b in group[i + 1 :] if _overlap(a, b)]
            if not pairs:
                continue
            name = " and ".join(
                sorted({naming.describe_receiver(c.receiver)[0] for pair in pairs for c in pair})
            )
            senders = sorted({sender_text(c) or "any sender" for pair in pairs for c in pair})
            copies = len({id(c.receiver) for pair in pairs for c in pair})
            cause = (
                "its module was imported twice, and each copy of the function is connected"
                if copies > 1
                else "it was connected again (for any sender and for one sender, "
                "or under another dispatch_uid)"
            )
            messages.append(
                checks.Warning(
                    f"{name} is connected to {info.name} more than once "
                    f"({', '.join(senders)}), so it runs more than once per send: {cause}.",
                    hint=(
                        "Connect receivers once, from AppConfig.ready(), and import the "
                        "module by one name only; pass dispatch_uid= to make a repeated "
                        f"connect() harmless. Defined at {filename}:{lineno}."
                    ),
                    obj=name,
                    id="signaltrace.W002",
                )
            )
    return messages


def check_senderless_receivers(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``signaltrace.I001`` for a model-signal receiver connected without ``sender=``.

    .. versionadded:: 0.1.0
    """
    setting = get_config()["CHECK_SENDERLESS"]
    if setting is False:
        return []
    ignored = set(setting) if isinstance(setting, (list, tuple)) else set()
    messages: list[CheckMessage] = []
    for info in discover_signals():
        if not isinstance(info.signal, ModelSignal):
            continue
        for connection in connections(info.signal):
            if not connection.any_sender:
                continue
            name, filename, lineno = naming.describe_receiver(connection.receiver)
            if name in ignored or name.startswith("django."):
                continue
            where = f" ({filename}:{lineno})" if filename is not None else ""
            messages.append(
                checks.Info(
                    f"{name}{where} is connected to {info.name} without sender=, "
                    "so it runs for every model.",
                    hint=(
                        "Pass sender=<Model> to connect() or @receiver() if it is meant "
                        "for one model. If it is meant for all, list it in "
                        "SIGNALTRACE['CHECK_SENDERLESS'] (or set that to False) to "
                        "silence this."
                    ),
                    obj=name,
                    id="signaltrace.I001",
                )
            )
    return messages

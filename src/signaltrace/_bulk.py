"""Detect operations that skip model signals while receivers are connected.

While signaltrace is installed (and :setting:`DETECT_SKIPPED` is on), these are
wrapped, transparently (same arguments, return values and exceptions):

- ``QuerySet.update``, ``bulk_create`` and ``bulk_update``: no ``pre_save`` or
  ``post_save`` is sent for the rows they write (``bulk_update`` runs
  ``update`` per batch; it is reported once, as ``bulk_update``).
- ``QuerySet._raw_delete``: no ``pre_delete`` or ``post_delete``. Django's
  own fast deletes use it only when no delete receivers are connected, so
  only direct calls are reported.
- ``Collector.delete`` (behind ``Model.delete`` and ``QuerySet.delete``): the
  rows an ``on_delete`` rule updates (``SET_NULL``, ``SET_DEFAULT``, ``SET()``)
  get no save signals, and on Django 6.1 the database-level rules
  (``DB_CASCADE``, ``DB_SET_NULL``, ``DB_SET_DEFAULT``) change rows Django never
  sees, so their delete or save receivers do not run either.
- ``aupdate``, ``abulk_create``, ``abulk_update``, ``adelete`` (and
  ``Model.adelete``) run the sync methods in a worker thread; their wrappers
  only remember the caller's line for the report.

With no capture open anywhere, a wrapper costs one call and one global read
(about 0.3 µs on Python 3.11, next to the tens of µs of the query). With one
open, the receivers are looked up (without filling the receivers cache) only
after the operation succeeded and only if it touched rows; see
:func:`~signaltrace._skipped.report`.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any, Final

from django.apps import apps
from django.db.models import Model, QuerySet, signals
from django.db.models.deletion import Collector, get_candidate_relations_to_delete

from . import context as _ctx
from ._compat import DATABASE_ON_DELETE, DB_CASCADE
from ._hotpath import find_origin, make_origin
from ._skipped import ASYNC_ORIGIN, report
from .context import log_failure, recording

__all__ = ["install", "is_installed", "uninstall"]

SAVE_SIGNALS: Final = (signals.pre_save, signals.post_save)
DELETE_SIGNALS: Final = (signals.pre_delete, signals.post_delete)

#: (class, name) -> Django's function, and -> the wrapper put in its place.
_originals: dict[tuple[type, str], Any] = {}
_wrappers: dict[tuple[type, str], Any] = {}
#: Code objects of Django's bulk_update and Collector.delete, to recognise
#: the update()/_raw_delete() calls they make themselves.
_codes: dict[str, types.CodeType] = {}

#: A planned report: (operation, model, signals, rows).
_Plan = tuple[str, type, tuple[Any, ...], int | None]


def _caller(frame: types.FrameType | None, name: str) -> types.CodeType | None:
    """Code of the first caller that is not a method ``name`` (``super()`` chains)."""
    while frame is not None and frame.f_code.co_name == name:
        frame = frame.f_back
    return None if frame is None else frame.f_code


def _rule_name(on_delete: object) -> str:
    name = getattr(on_delete, "__name__", None)
    if not isinstance(name, str):
        return type(on_delete).__name__
    return "SET(...)" if name == "set_on_delete" else name


def _on_delete_operation(model: type[Model], field_name: str, rule: object) -> str:
    return f"delete ({model._meta.object_name}.{field_name} on_delete={_rule_name(rule)})"


# -- sync wrappers --------------------------------------------------------------


def _after_update(
    queryset: QuerySet[Any], kwargs: dict[str, Any], rows: int, start: int, frame: Any
) -> None:
    try:
        caller = _caller(frame, "update")
        if caller is _codes["bulk_update"]:
            return  # reported by bulk_update
        model = queryset.model
        operation = "update"
        if caller is _codes["collector_delete"]:
            (name,) = kwargs  # Collector.delete updates one on_delete field at a time
            field = model._meta.get_field(name)
            operation = _on_delete_operation(model, name, field.remote_field.on_delete)
    except Exception as err:  # pragma: no cover - defensive
        log_failure("skipped-signal detection", err)
        return
    report(operation, model, SAVE_SIGNALS, rows=rows, start_ns=start, frame=frame)


def _patch_update(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update(self: QuerySet[Any], **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return original(self, **kwargs)
        start = perf_counter_ns()
        rows = original(self, **kwargs)
        if rows:
            _after_update(self, kwargs, rows, start, sys._getframe(1))
        return rows

    return update


def _patch_bulk_create(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def bulk_create(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return original(self, *args, **kwargs)
        start = perf_counter_ns()
        created = original(self, *args, **kwargs)
        rows = len(created) if isinstance(created, list) else 0
        if rows:
            report(
                "bulk_create",
                self.model,
                SAVE_SIGNALS,
                rows=rows,
                start_ns=start,
                frame=sys._getframe(1),
            )
        return created

    return bulk_create


def _patch_bulk_update(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def bulk_update(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return original(self, *args, **kwargs)
        start = perf_counter_ns()
        rows = original(self, *args, **kwargs)
        if rows:
            report(
                "bulk_update",
                self.model,
                SAVE_SIGNALS,
                rows=rows,
                start_ns=start,
                frame=sys._getframe(1),
            )
        return rows

    return bulk_update


def _patch_raw_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _raw_delete(self: QuerySet[Any], *args: Any, **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return original(self, *args, **kwargs)
        start = perf_counter_ns()
        rows = original(self, *args, **kwargs)
        frame = sys._getframe(1)
        # Collector.delete's fast deletes run only without delete receivers.
        if rows and _caller(frame, "_raw_delete") is not _codes["collector_delete"]:
            report(
                "_raw_delete", self.model, DELETE_SIGNALS, rows=rows, start_ns=start, frame=frame
            )
        return rows

    return _raw_delete


# -- deletion ---------------------------------------------------------------------


def _fetched_field_updates(collector: Collector) -> list[_Plan]:
    """``on_delete`` updates of fetched rows (lazy querysets go through ``update()``)."""
    plans: list[_Plan] = []
    field: Any
    batches: Any
    for (field, _value), batches in collector.field_updates.items():
        objs = [
            obj
            for batch in batches
            if not (isinstance(batch, QuerySet) and batch._result_cache is None)
            for obj in batch
        ]
        if objs:
            model = type(objs[0])
            operation = _on_delete_operation(model, field.name, field.remote_field.on_delete)
            plans.append((operation, model, SAVE_SIGNALS, len({obj.pk for obj in objs})))
    return plans


def _database_rules(collector: Collector) -> list[_Plan]:
    """Rows a database-level ``on_delete`` (Django 6.1) changes behind Django's back."""
    if DATABASE_ON_DELETE is None or not _any_database_rule():
        return []
    forced = bool(getattr(collector, "force_collection", False))
    starts: dict[Any, None] = {
        model._meta.concrete_model: None
        for model in (
            *collector.data,
            *(getattr(qs, "model", None) for qs in collector.fast_deletes),
        )
        if model is not None
    }
    plans: list[_Plan] = []
    for model in starts:
        for plan in _model_rules(model, forced):
            if plan not in plans:  # reached from two of them
                plans.append(plan)
    return plans


#: ``[models list, whether any of them has a database-level on_delete rule]``:
#: ``apps.get_models()`` is cached by Django and made anew when the registry
#: changes, so the list's identity says whether the answer still holds.
_ANY_RULE: list[Any] = [None, False]


def _any_database_rule() -> bool:
    """Whether some installed model has a relation with a database-level ``on_delete``."""
    models = apps.get_models(include_auto_created=True)
    if models is not _ANY_RULE[0]:
        db_on_delete = DATABASE_ON_DELETE
        _ANY_RULE[1] = any(
            isinstance(field.remote_field.on_delete, db_on_delete)
            for model in models
            for field in model._meta.local_fields
            if field.remote_field is not None
            and getattr(field.remote_field, "on_delete", None) is not None
        )
        _ANY_RULE[0] = models
    return bool(_ANY_RULE[1])


#: ``(concrete model, force_collection)`` -> ``(plans, checks)``: the database-level
#: rules that deleting its rows sets off, and ``(model, its _meta.related_objects)``
#: for each model the walk read. Django makes a new ``related_objects`` whenever
#: the app registry changes (``Apps.clear_cache``), which makes the entry stale.
_RULES: dict[tuple[type, bool], tuple[tuple[_Plan, ...], tuple[tuple[Any, Any], ...]]] = {}


def _model_rules(model: type, forced: bool) -> tuple[_Plan, ...]:
    """The plans of deleting rows of ``model``, cached while its relations stand."""
    entry = _RULES.get((model, forced))
    if entry is not None and all(
        reached._meta.related_objects is relations for reached, relations in entry[1]
    ):
        return entry[0]
    if len(_RULES) > 1000:  # pragma: no cover - bounded cache
        _RULES.clear()
    entry = _RULES[(model, forced)] = _walk_rules(model, forced)
    return entry[0]


def _walk_rules(start: type, forced: bool) -> tuple[tuple[_Plan, ...], tuple[tuple[Any, Any], ...]]:
    db_on_delete = DATABASE_ON_DELETE
    db_cascade = DB_CASCADE
    queue: list[Any] = [start]
    seen: dict[type, Any] = {}
    plans: list[_Plan] = []
    related: Any
    while queue:
        model = queue.pop(0)._meta.concrete_model
        if model in seen:
            continue
        seen[model] = model._meta.related_objects
        for related in get_candidate_relations_to_delete(model._meta):
            rule = related.field.remote_field.on_delete
            if not isinstance(rule, db_on_delete):
                continue
            if forced and rule.forced_collector:
                continue  # collected and deleted by Django, with signals
            related_model = related.related_model
            operation = _on_delete_operation(related_model, related.field.name, rule)
            if rule is db_cascade:
                plans.append((operation, related_model, DELETE_SIGNALS, None))
                queue.append(related_model)
            else:
                plans.append((operation, related_model, SAVE_SIGNALS, None))
    return tuple(plans), tuple(seen.items())


def _patch_collector_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete(self: Collector) -> Any:
        if not _ctx.CAPTURING or not recording():
            return original(self)
        start = perf_counter_ns()
        try:
            plans = _fetched_field_updates(self) + _database_rules(self)
        except Exception as err:  # pragma: no cover - defensive
            log_failure("skipped-signal detection", err)
            plans = []
        result = original(self)
        frame = sys._getframe(1)
        for operation, model, signals_, rows in plans:
            report(operation, model, signals_, rows=rows, start_ns=start, frame=frame)
        return result

    return delete


# -- async wrappers -----------------------------------------------------------------


def _patch_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ctx.CAPTURING:
            return await original(self, *args, **kwargs)
        origin = make_origin(find_origin(sys._getframe(1)))
        token = ASYNC_ORIGIN.set(origin)
        try:
            return await original(self, *args, **kwargs)
        finally:
            ASYNC_ORIGIN.reset(token)

    return wrapper


_PATCHES: Final[tuple[tuple[type, str, Callable[[Any], Any]], ...]] = (
    (QuerySet, "update", _patch_update),
    (QuerySet, "bulk_create", _patch_bulk_create),
    (QuerySet, "bulk_update", _patch_bulk_update),
    (QuerySet, "_raw_delete", _patch_raw_delete),
    (Collector, "delete", _patch_collector_delete),
    (QuerySet, "aupdate", _patch_async),
    (QuerySet, "abulk_create", _patch_async),
    (QuerySet, "abulk_update", _patch_async),
    (QuerySet, "adelete", _patch_async),
    (Model, "adelete", _patch_async),
)


def install() -> None:
    """Wrap the operations listed above; idempotent.

    .. versionadded:: 0.1.0
    """
    for cls, name, patch in _PATCHES:
        if (cls, name) in _originals:
            continue
        original = cls.__dict__[name]
        wrapper = patch(original)
        _originals[(cls, name)] = original
        _wrappers[(cls, name)] = wrapper
        setattr(cls, name, wrapper)
    _codes["bulk_update"] = inspect.unwrap(_originals[(QuerySet, "bulk_update")]).__code__
    _codes["collector_delete"] = inspect.unwrap(_originals[(Collector, "delete")]).__code__


def uninstall() -> None:
    """Put Django's functions back (unless something else replaced ours since); idempotent.

    .. versionadded:: 0.1.0
    """
    for (cls, name), original in list(_originals.items()):
        if cls.__dict__.get(name) is _wrappers[(cls, name)]:
            setattr(cls, name, original)
        del _originals[(cls, name)]
        del _wrappers[(cls, name)]


def is_installed() -> bool:
    """Whether the wrappers are in place.

    .. versionadded:: 0.1.0
    """
    return bool(_originals)

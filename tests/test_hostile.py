"""Hostile receivers, senders, kwargs and exceptions: signaltrace changes nothing Django does.

Table-driven: each case builds fresh hostile objects whose dunders (``__str__``,
``__repr__``, ``__eq__``, ``__hash__``, ``__bool__``, ``__class__``, a metaclass's
``__module__``/``__name__``/``__mro__``, ...) count every call and, where the
case says so, raise. Each case runs through the six send methods three times:
with plain Django/blinker (``signaltrace.uninstall()``), with signaltrace
installed but idle, and inside ``capture()``. The three runs must give the same
responses, the same exception (the very object the hostile code raised), the
same log records and the same dunder calls; the captured trace must render and
serialise, calling no user code.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from typing import Any
from unittest import mock

import blinker
import pytest
from django.contrib.auth.models import User
from django.db.models.query import QuerySet
from django.dispatch import Signal

import signaltrace
from signaltrace import context as st_context

_TYPE_NAME = type.__dict__["__name__"].__get__
_EXC_ARGS = BaseException.__dict__["args"].__get__


class Boom(Exception):
    """What hostile dunders raise: one instance per run, compared by identity."""


class Halt(BaseException):
    """A BaseException that is not an Exception: robust sends do not catch it."""


class Probe:
    """Counts the dunder calls on one run's hostile objects while armed."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.boom = Boom("boom")
        self.armed = False

    def hit(self, what: str, raising: bool = False) -> None:
        if self.armed:
            self.counts[what] += 1
        if raising:
            raise self.boom


def hostile_meta(probe: Probe, raising: frozenset[str] = frozenset()) -> type:
    """A metaclass whose classes answer ``__module__``, ``__name__``... through user code."""

    def hit(what: str) -> None:
        probe.hit(f"meta.{what}", what in raising)

    watched = frozenset({"__qualname__", "__module__", "__name__", "__mro__", "__dict__", "_meta"})

    class HostileMeta(type):
        @property
        def __module__(cls) -> str:  # type: ignore[override]
            hit("__module__")
            return "tests.hostile"

        @property
        def __name__(cls) -> str:  # type: ignore[override]
            hit("__name__")
            return "Hostile"

        def __getattribute__(cls, name: str) -> Any:
            if name in watched:
                hit(f"getattribute {name}")
            return super().__getattribute__(name)

        def __eq__(cls, other: object) -> bool:
            hit("__eq__")
            return cls is other

        def __hash__(cls) -> int:
            hit("__hash__")
            return id(cls) >> 4

        def __repr__(cls) -> str:
            hit("__repr__")
            return "<HostileMeta>"

        def __str__(cls) -> str:
            hit("__str__")
            return "HostileMeta"

    return HostileMeta


def hostile_class(
    probe: Probe,
    raising: frozenset[str] = frozenset(),
    *,
    base: type = object,
    meta: type = type,
    hash_ok: bool = True,
) -> type:
    """A class whose instances count (and maybe raise from) every dunder."""

    def hit(what: str) -> None:
        probe.hit(what, what in raising)

    class Hostile(base, metaclass=meta):  # type: ignore[misc,valid-type]
        def __str__(self) -> str:
            hit("str")
            return "hostile"

        def __repr__(self) -> str:
            hit("repr")
            return "Hostile()"

        def __format__(self, spec: str) -> str:
            hit("format")
            return "hostile"

        def __eq__(self, other: object) -> bool:
            hit("eq")
            return self is other

        def __ne__(self, other: object) -> bool:
            hit("ne")
            return self is not other

        def __bool__(self) -> bool:
            hit("bool")
            return True

        def __getattr__(self, name: str) -> Any:
            probe.hit(f"getattr {name}")
            raise AttributeError(name)

        @property  # type: ignore[misc]
        def __class__(self) -> type:  # type: ignore[override]
            hit("class")
            return type(self)

        @property
        def pk(self) -> Any:
            hit("pk")
            return 1

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            probe.hit("call")
            return RESULTS[probe]

        def method(self, *args: Any, **kwargs: Any) -> Any:
            probe.hit("call")
            return RESULTS[probe]

    if hash_ok:

        def __hash__(self: object) -> int:
            hit("hash")
            return id(self) >> 4

        Hostile.__hash__ = __hash__  # type: ignore[method-assign,assignment]
    else:
        Hostile.__hash__ = None  # type: ignore[assignment]
    return Hostile


#: Each run's result object, returned by its receivers (keyed by the run's probe).
RESULTS: dict[Probe, object] = {}

#: Dunders a hostile object raises from (its ``__hash__`` and ``__class__`` only count,
#: unless a case says otherwise: Django hashes senders, and connect() probes receivers).
LOUD: frozenset[str] = frozenset({"str", "repr", "format", "eq", "ne", "bool", "pk"})


@dataclasses.dataclass
class Run:
    """One run's objects: built fresh for each of the three runs."""

    probe: Probe
    receivers: list[Any]
    sender: Any
    kwargs: dict[Any, Any]
    result: object
    exc: BaseException | None = None


class Sender:
    """A plain, hashable, weakly referenceable sender."""


def counting_receiver(probe: Probe, *, is_async: bool = False, exc: BaseException | None = None):
    if is_async:

        async def areceiver(*args: Any, **kwargs: Any) -> Any:
            probe.hit("call")
            if exc is not None:
                raise exc
            return RESULTS[probe]

        return areceiver

    def receiver(*args: Any, **kwargs: Any) -> Any:
        probe.hit("call")
        if exc is not None:
            raise exc
        return RESULTS[probe]

    return receiver


def run_of(
    probe: Probe,
    receivers: list[Any] | None = None,
    sender: Any = None,
    kwargs: dict[Any, Any] | None = None,
    exc: BaseException | None = None,
    is_async: bool = False,
) -> Run:
    result = RESULTS[probe] = object()
    if receivers is None:
        receivers = [counting_receiver(probe, is_async=is_async, exc=exc)]
    return Run(
        probe,
        receivers,
        Sender() if sender is None else sender,
        kwargs or {},
        result,
        exc,
    )


Case = Callable[[Probe], Run]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(build: Case) -> Case:
        assert name not in CASES
        CASES[name] = build
        return build

    return register


# -- receivers ----------------------------------------------------------------


@case("receiver: metaclass __module__ raises (the issue)")
def _(probe: Probe) -> Run:
    cls = hostile_class(probe, meta=hostile_meta(probe, frozenset({"__module__"})))
    return run_of(probe, [cls()])


@case("receiver: metaclass __module__, __name__, __mro__, __dict__ raise")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __mro__", "getattribute __dict__"})
    cls = hostile_class(probe, meta=hostile_meta(probe, raising))
    return run_of(probe, [cls()])


@case("receiver: every instance dunder raises")
def _(probe: Probe) -> Run:
    return run_of(probe, [hostile_class(probe, LOUD)()])


@case("receiver: function with a hostile __module__ object")
def _(probe: Probe) -> Run:
    receiver = counting_receiver(probe)
    receiver.__module__ = hostile_class(probe, LOUD)()
    return run_of(probe, [receiver])


@case("receiver: async function with hostile __module__ and __qualname__ strings")
def _(probe: Probe) -> Run:
    receiver = counting_receiver(probe, is_async=True)
    text = hostile_class(probe, LOUD | {"len", "hash"}, base=str)
    receiver.__module__ = text("tests.hostile")
    receiver.__qualname__ = text("areceiver")
    return run_of(probe, [receiver])


@case("receiver: function with hostile __qualname__ string")
def _(probe: Probe) -> Run:
    receiver = counting_receiver(probe)
    receiver.__qualname__ = hostile_class(probe, LOUD | {"hash"}, base=str)("receiver")
    return run_of(probe, [receiver])


@case("receiver: bound method of a hostile instance")
def _(probe: Probe) -> Run:
    cls = hostile_class(probe, LOUD, meta=hostile_meta(probe, frozenset({"__module__"})))
    return run_of(probe, [cls().method])


@case("receiver: partial of a hostile callable")
def _(probe: Probe) -> Run:
    cls = hostile_class(probe, LOUD, meta=hostile_meta(probe, frozenset({"__module__"})))
    return run_of(probe, [functools.partial(cls())])


@case("receiver: builtin method of an object whose class's __qualname__ raises")
def _(probe: Probe) -> Run:
    meta = hostile_meta(probe, frozenset({"getattribute __qualname__", "__module__"}))
    cls = hostile_class(probe, meta=meta, base=dict)
    return run_of(probe, [cls().update])


@case("receiver: a class whose metaclass raises")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __dict__", "__str__"})
    return run_of(probe, [hostile_class(probe, meta=hostile_meta(probe, raising))])


@case("receiver: a mock")
def _(probe: Probe) -> Run:
    run = run_of(probe)
    run.receivers = [mock.Mock(return_value=run.result)]
    return run


# -- senders ------------------------------------------------------------------


@case("sender: every dunder but __hash__ raises")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD | {"class"})())


@case("sender: __hash__ raises")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD | {"hash"})())


@case("sender: unhashable")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD, hash_ok=False)())


@case("sender: instance of a class whose metaclass raises")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __mro__", "getattribute _meta"})
    return run_of(probe, sender=hostile_class(probe, meta=hostile_meta(probe, raising))())


@case("sender: a class whose metaclass raises")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __mro__", "__str__"})
    return run_of(probe, sender=hostile_class(probe, meta=hostile_meta(probe, raising)))


@case("sender: hostile str")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD | {"len"}, base=str)("x" * 300))


@case("sender: hostile int")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD | {"index"}, base=int)(7))


@case("sender: huge hostile int")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=hostile_class(probe, LOUD, base=int)(10**5000))


@case("sender: huge int")
def _(probe: Probe) -> Run:
    return run_of(probe, sender=10**5000)


@case("sender: model instance with a hostile pk value")
def _(probe: Probe) -> Run:
    user = User(username="x")
    user.__dict__["id"] = hostile_class(probe, LOUD | {"class"})()
    return run_of(probe, sender=user)


@case("sender: model-like object whose pk raises")
def _(probe: Probe) -> Run:
    cls = hostile_class(probe, LOUD | {"class"})
    fake = type("FakeUser", (cls,), {"_meta": User._meta})
    return run_of(probe, sender=fake())


# -- kwargs -------------------------------------------------------------------


@case("kwargs: hostile objects, containers and numbers")
def _(probe: Probe) -> Run:
    loud = hostile_class(probe, LOUD | {"class"})
    meta = hostile_meta(probe, frozenset({"__module__", "__name__", "getattribute __mro__"}))
    return run_of(
        probe,
        kwargs={
            "thing": loud(),
            "hint": hostile_class(probe, LOUD | {"class"}, base=int)(5),
            "huge_hint": hostile_class(probe, LOUD, base=int)(10**5000),
            "ratio": hostile_class(probe, LOUD, base=float)(1.5),
            "text": hostile_class(probe, LOUD | {"len", "getitem"}, base=str)("y" * 500),
            "items": [loud(), 1],
            "tagged": hostile_class(probe, LOUD | {"iter", "len"}, base=list)([1, 2]),
            "tags": hostile_class(probe, LOUD | {"iter", "len"}, base=frozenset)({1, 2}),
            "pair": hostile_class(probe, LOUD | {"iter", "len"}, base=tuple)((1, 2)),
            "cls": hostile_class(probe, meta=meta),
            "of_meta": hostile_class(probe, meta=meta)(),
        },
    )


@case("kwargs: huge values")
def _(probe: Probe) -> Run:
    return run_of(
        probe,
        kwargs={
            "big": 10**5000,
            "negative": -(10**5000),
            "in_tuple": (1, 10**5000),
            "blob": b"x" * 10_000_000,
            "update_fields": frozenset(f"field_{i}" for i in range(10_000)),
            "nested": [[1, [2, [3, [4]]]]],
            "mapping": {i: i for i in range(10_000)},
        },
    )


@case("kwargs: model instances with hostile pks")
def _(probe: Probe) -> Run:
    user = User(username="x")
    user.__dict__["id"] = hostile_class(probe, LOUD | {"class"})()
    fake = type("FakeUser", (hostile_class(probe, LOUD | {"class"}),), {"_meta": User._meta})
    return run_of(probe, kwargs={"instance": user, "other": fake()})


@case("kwargs: an object posing as a QuerySet")
def _(probe: Probe) -> Run:
    def posing(self: object) -> type:
        probe.hit("class")
        return QuerySet

    cls = type("Posing", (hostile_class(probe, LOUD),), {"__class__": property(posing)})
    return run_of(probe, kwargs={"queryset": cls()})


@case("kwargs: a hostile key")
def _(probe: Probe) -> Run:
    key = hostile_class(probe, frozenset({"str", "repr", "format", "len"}), base=str)
    return run_of(probe, kwargs={key("colour"): "red", key("x" * 500): 1})


# -- exceptions ---------------------------------------------------------------


def raising_run(probe: Probe, exc: BaseException, is_async: bool = False) -> Run:
    return run_of(probe, exc=exc, is_async=is_async)


@case("exception: hostile args")
def _(probe: Probe) -> Run:
    return raising_run(probe, Boom(hostile_class(probe, LOUD | {"class"})(), "text"))


@case("exception: hostile scalar args")
def _(probe: Probe) -> Run:
    text = hostile_class(probe, LOUD | {"len", "getitem"}, base=str)("x" * 500)
    number = hostile_class(probe, LOUD | {"index"}, base=int)(10**5000)
    return raising_run(probe, Boom(text, number, 10**5000, 1.5))


@case("exception: huge args (async receiver)")
def _(probe: Probe) -> Run:
    return raising_run(probe, Boom("x" * 1_000_000, *["a"] * 10_000), is_async=True)


@case("exception: args property raises")
def _(probe: Probe) -> Run:
    def args(self: BaseException) -> Any:
        probe.hit("args", True)

    cls = type("ArgsBoom", (Exception,), {"args": property(args)})
    return raising_run(probe, cls("x"))


@case("exception: class whose metaclass raises")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __qualname__", "__str__"})
    cls = hostile_meta(probe, raising)("MetaBoom", (Exception,), {})
    return raising_run(probe, cls("x"))


@case("exception: class whose metaclass raises (async receiver)")
def _(probe: Probe) -> Run:
    raising = frozenset({"__module__", "__name__", "getattribute __qualname__"})
    cls = hostile_meta(probe, raising)("MetaBoom", (Exception,), {})
    return raising_run(probe, cls("x"), is_async=True)


@case("exception: __str__ and __repr__ raise, __traceback__ is a property")
def _(probe: Probe) -> Run:
    def loud(self: object) -> str:
        probe.hit("str", True)
        return ""

    def traceback(self: BaseException) -> Any:
        probe.hit("traceback")
        return BaseException.__dict__["__traceback__"].__get__(self)

    cls = type(
        "LoudBoom",
        (Exception,),
        {"__str__": loud, "__repr__": loud, "__traceback__": property(traceback)},
    )
    return raising_run(probe, cls(1, 2))


@case("exception: a BaseException")
def _(probe: Probe) -> Run:
    return raising_run(probe, Halt(hostile_class(probe, LOUD | {"class"})()))


# -- running ------------------------------------------------------------------

DJANGO_METHODS = ("send", "send_robust", "asend", "asend_robust")
METHODS = [(m, False) for m in DJANGO_METHODS]
METHODS += [(m, True) for m in DJANGO_METHODS]  # a caching signal, as model signals are
METHODS += [("blinker.send", False), ("blinker.send_async", False)]


def _sync_wrapper(receiver: Callable[..., Any]) -> Callable[..., Any]:
    async def inner(*args: Any, **kwargs: Any) -> Any:
        return receiver(*args, **kwargs)

    return inner


def run_async(coro: Any) -> Any:
    """Run ``coro`` in a fresh loop without ``asyncio.run()``.

    ``asyncio.run()`` installs a SIGINT handler holding the task, and restoring
    it ``repr()``s that handler (Python builds an enum error message): with a
    hostile object in the task's result, the handler would stay installed and
    poison every later ``asyncio.run()`` in the process.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _is_async(receiver: Any) -> bool:
    return asyncio.iscoroutinefunction(receiver) and not isinstance(receiver, mock.Mock)


def dispatch(method: str, caching: bool, run: Run) -> list[tuple[Any, Any]]:
    """Connect the run's receivers to a fresh signal and send it with ``method``."""
    sender, kwargs = run.sender, run.kwargs
    if method.startswith("blinker."):
        bsignal = blinker.Signal()
        for receiver in run.receivers:
            if method == "blinker.send" and _is_async(receiver):
                continue
            bsignal.connect(receiver, weak=False)
        run.probe.armed = True
        if method == "blinker.send":
            return bsignal.send(sender, **kwargs)
        return run_async(bsignal.send_async(sender, _sync_wrapper=_sync_wrapper, **kwargs))
    signal = Signal(use_caching=caching)
    for receiver in run.receivers:
        signal.connect(receiver, weak=False)
    run.probe.armed = True
    if method in ("send", "send_robust"):
        return getattr(signal, method)(sender, **kwargs)  # type: ignore[no-any-return]
    return run_async(getattr(signal, method)(sender, **kwargs))  # type: ignore[no-any-return]


class Records(logging.Handler):
    """Keeps records without formatting them (formatting would str() user objects)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def token(obj: Any, run: Run) -> Any:
    """A comparable stand-in for a value, built without calling user code."""
    if obj is None or type(obj) in (str, bool, int):
        return obj
    for name in ("result", "exc"):
        if obj is getattr(run, name):
            return name
    if obj is run.probe.boom:
        return "boom"
    for i, receiver in enumerate(run.receivers):
        if obj is receiver:
            return f"receiver {i}"
    name = _TYPE_NAME(type(obj)) if type(type(obj)) is type else "?"
    if issubclass(type(obj), BaseException):
        args = _EXC_ARGS(obj)
        return ("exception", name, args if all(type(a) is str for a in args) else len(args))
    return ("object", name)


@dataclasses.dataclass
class Outcome:
    responses: Any
    error: Any
    logs: list[Any]
    counts: dict[str, int]
    trace: signaltrace.Trace | None
    run: Run
    internal_logs: list[logging.LogRecord]


def run_case(name: str, method: str, caching: bool, mode: str) -> Outcome:
    probe = Probe()
    run = CASES[name](probe)
    dispatch_log, internal_log = (
        logging.getLogger("django.dispatch"),
        logging.getLogger("signaltrace"),
    )
    records, internal = Records(), Records()
    saved = dispatch_log.propagate
    dispatch_log.addHandler(records)
    dispatch_log.propagate = False
    internal_log.addHandler(internal)
    if mode == "plain":
        signaltrace.uninstall()
    responses: Any = None
    error: BaseException | None = None
    trace = None
    try:
        try:
            if mode == "capture":
                with signaltrace.capture() as trace:
                    responses = dispatch(method, caching, run)
            else:
                responses = dispatch(method, caching, run)
        except BaseException as exc:  # compared below, Halt included
            error = exc
        finally:
            probe.armed = False
    finally:
        if mode == "plain":
            signaltrace.install()
        dispatch_log.removeHandler(records)
        dispatch_log.propagate = saved
        internal_log.removeHandler(internal)
    logs = [
        (
            r.name,
            r.levelno,
            r.msg,
            tuple(token(a, run) for a in (r.args or ())),  # type: ignore[union-attr]
            token(r.exc_info[1], run) if r.exc_info else None,
        )
        for r in records.records
    ]
    return Outcome(
        responses=None
        if responses is None
        else [(token(r, run), token(v, run)) for r, v in responses],
        error=None if error is None else token(error, run),
        logs=logs,
        counts=dict(probe.counts),
        trace=trace,
        run=run,
        internal_logs=internal.records,
    )


@pytest.fixture(autouse=True)
def _fresh_failure_log(monkeypatch):
    """signaltrace logs each internal failure once per process: see every one here."""
    monkeypatch.setattr(st_context, "_logged", set())
    yield
    RESULTS.clear()


@pytest.mark.parametrize(
    ("method", "caching"),
    METHODS,
    ids=[f"{m}{'-caching' if c else ''}" for m, c in METHODS],
)
@pytest.mark.parametrize("name", list(CASES))
def test_hostile_objects_change_nothing(name: str, method: str, caching: bool) -> None:
    plain = run_case(name, method, caching, "plain")
    for mode in ("idle", "capture"):
        traced = run_case(name, method, caching, mode)
        assert traced.error == plain.error, mode
        assert traced.responses == plain.responses, mode
        assert traced.logs == plain.logs, mode
        assert traced.counts == plain.counts, mode
        assert traced.internal_logs == [], mode
    trace = traced.trace
    assert trace is not None
    if plain.error is None and plain.responses:
        # Django got to the receivers: the dispatch and every call were recorded.
        assert len(trace.dispatches) == 1
        assert len(trace.calls) == len(plain.responses)
    before = dict(traced.run.probe.counts)
    traced.run.probe.armed = True
    text = trace.render()
    data = json.dumps(trace.to_dict())
    traced.run.probe.armed = False
    assert dict(traced.run.probe.counts) == before, "reading the trace called user code"
    assert text
    assert len(data) < 100_000
    assert traced.internal_logs == []


def test_every_case_reaches_a_receiver_somewhere() -> None:
    """The table is not vacuous: Django itself stops only these cases before a receiver."""
    stopped = {
        name for name in CASES if run_case(name, "send_robust", False, "plain").error is not None
    }
    assert stopped == {
        "sender: __hash__ raises",  # hashed by sender_receivers_cache.get()
        "sender: unhashable",
        "sender: model instance with a hostile pk value",  # Model.__hash__ checks the pk
        "exception: a BaseException",  # raised by the receiver, through send_robust
    }

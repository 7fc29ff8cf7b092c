"""Receiver coverage: which connected receivers ran in at least one test.

The pytest plugin (``--signaltrace-coverage``) keeps one :class:`CoverageData`
per process: :meth:`~CoverageData.take_connected` reads every receiver
connected to a Django or blinker signal (at the end of collection and at the
end of the session), :meth:`~CoverageData.record` counts the receivers each
test's trace ran. Under pytest-xdist each worker sends its data as JSON
(:meth:`~CoverageData.to_json`) and the controller merges them
(:meth:`~CoverageData.merge`). :meth:`~CoverageData.report` then keeps the
project's receivers (or those matching ``signaltrace_coverage_include``) and
gives the :class:`CoverageReport` the terminal section and the JSON file show.

A receiver is identified by its dotted name, file and first line, which are the
same in every worker (and in ``ReceiverCall.receiver_name``, ``filename`` and
``lineno``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import site
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from signaltrace import naming
from signaltrace._format import short_path
from signaltrace.introspection import (
    connections,
    named_blinker_signals,
    sender_candidates,
    sender_text,
    signal_holders,
)

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = [
    "MAX_EVENTS",
    "SCHEMA",
    "CoverageData",
    "CoverageReport",
    "ReceiverCoverage",
    "is_project_receiver",
]

SCHEMA: Final = "signaltrace.coverage/1"
#: The most events the per-test coverage capture records (a test that sends
#: more has its trace truncated, and the receivers it ran after that point are
#: not counted; the report says how many tests that happened to).
MAX_EVENTS: Final = 100_000

#: ``(dotted name, filename, first line)``.
Key = tuple[str, str | None, int | None]
#: ``(signal name, sender label or None for any sender)``.
Link = tuple[str, str | None]


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    with contextlib.suppress(AttributeError):  # virtualenvs of old had no getsitepackages
        roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)


_LIBRARY_ROOTS: Final = _library_roots()


def is_project_receiver(name: str, filename: str | None, include: Sequence[str] = ()) -> bool:
    """Whether a receiver counts: it matches a glob of ``include``, or, without
    globs, it is the project's code (not Django's, not signaltrace's, not in
    ``site-packages`` or the standard library).

    A glob matches a dotted name (``accounts.signals.*``); a plain dotted
    prefix (``accounts``) matches the package and everything in it.

    .. versionadded:: 0.1.0
    """
    if include:
        return any(
            fnmatch.fnmatchcase(name, glob) or fnmatch.fnmatchcase(name, glob + ".*")
            for glob in include
        )
    if filename is None:
        return False
    top = name.split(".", 1)[0]
    if top in ("django", "signaltrace"):
        return False
    path = os.path.realpath(filename)
    if any(path.startswith(root) for root in _LIBRARY_ROOTS):
        return False
    parts = path.split(os.sep)
    return "site-packages" not in parts and "dist-packages" not in parts


@dataclass(slots=True)
class ReceiverCoverage:
    """One connected receiver and how often the tests ran it.

    .. versionadded:: 0.1.0
    """

    receiver: str
    filename: str | None
    lineno: int | None
    #: The signals it is connected to, with the sender (``None``: any sender).
    connections: list[Link] = field(default_factory=list)
    #: How many tests ran it (0: never).
    tests: int = 0
    #: How many times it ran, all tests together.
    calls: int = 0

    @property
    def location(self) -> str:
        """``path/to/module.py:12``, relative to the current directory or its ``sys.path`` entry."""
        if self.filename is None:
            return "?"
        return f"{short_path(self.filename)}:{self.lineno}"

    @property
    def signals(self) -> list[str]:
        """The names of the signals it is connected to, each once."""
        return list(dict.fromkeys(signal for signal, _sender in self.connections))

    def connected_text(self) -> str:
        """``post_save (auth.User), pre_delete (any sender)``."""
        return ", ".join(
            f"{signal} ({sender if sender is not None else 'any sender'})"
            for signal, sender in self.connections
        )


@dataclass(slots=True)
class CoverageReport:
    """The receivers that count, never-run ones first, each group sorted by file and line.

    .. versionadded:: 0.1.0
    """

    receivers: list[ReceiverCoverage]
    #: Tests whose coverage trace reached :data:`MAX_EVENTS`.
    truncated_tests: int = 0
    #: Whether Django was set up, so that receivers could be read at all.
    django_ready: bool = True

    @property
    def total(self) -> int:
        return len(self.receivers)

    @property
    def run(self) -> int:
        return sum(1 for receiver in self.receivers if receiver.tests)

    @property
    def percent(self) -> float:
        """The share of receivers that ran, 100.0 when there are none (as coverage.py)."""
        return 100.0 if not self.receivers else round(100.0 * self.run / self.total, 2)

    def fails_under(self, minimum: float) -> bool:
        """Whether the percentage is below ``minimum`` (100 needs every receiver to run)."""
        if minimum >= 100:
            return self.run < self.total
        return self.percent < minimum

    def to_dict(self) -> dict[str, Any]:
        """What ``--signaltrace-coverage-json`` writes."""
        return {
            "schema": SCHEMA,
            "receivers": [
                {
                    "receiver": r.receiver,
                    "location": r.location,
                    "signals": r.signals,
                    "connections": [
                        {"signal": signal, "sender": sender} for signal, sender in r.connections
                    ],
                    "tests": r.tests,
                    "calls": r.calls,
                }
                for r in self.receivers
            ],
            "summary": {"total": self.total, "run": self.run, "percent": self.percent},
        }

    def lines(self) -> list[str]:
        """The terminal section's lines: a table, then the total."""
        if not self.django_ready:
            return ["Django was not set up: no signal receivers to measure."]
        header = ("Receiver", "Location", "Connected to", "Tests", "Calls")
        rows = [
            (r.receiver, r.location, r.connected_text(), str(r.tests), str(r.calls))
            for r in self.receivers
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        lines = []
        for row in [header, *rows]:
            left = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
            lines.append(f"{left}  {row[3]:>5}  {row[4]:>5}".rstrip())
        never = self.total - self.run
        lines.append(
            f"TOTAL: {self.total} receiver{'s' if self.total != 1 else ''}, {self.run} ran "
            f"in at least one test, {never} never ran: {self.percent:.2f}%"
        )
        if self.truncated_tests:
            lines.append(
                f"({self.truncated_tests} test{'s' if self.truncated_tests != 1 else ''} sent "
                f"more than {MAX_EVENTS:,} events: the receivers they ran after that are not "
                "counted.)"
            )
        return lines


def _link_list(value: Any) -> list[Link]:
    return [(str(item[0]), None if item[1] is None else str(item[1])) for item in value]


@dataclass(slots=True)
class CoverageData:
    """What one process saw: connected receivers and the receivers each test ran.

    .. versionadded:: 0.1.0
    """

    #: Connected receivers and their connections.
    connected: dict[Key, list[Link]] = field(default_factory=dict)
    #: Receivers that ran: ``[tests, calls]``.
    ran: dict[Key, list[int]] = field(default_factory=dict)
    #: Tests measured, and those whose trace was truncated.
    tests: int = 0
    truncated_tests: int = 0
    #: Whether :meth:`take_connected` found Django set up (at least once).
    django_ready: bool = False

    def take_connected(self) -> None:
        """Add every receiver connected now to a Django or blinker signal.

        The signals are those held by a module attribute (:func:`signal_holders`)
        and blinker's named signals. Nothing is changed: see
        :mod:`signaltrace.introspection`.
        """
        from django.apps import apps

        if not apps.ready:
            return
        self.django_ready = True
        signals: dict[int, Any] = {key: entry[0] for key, entry in signal_holders().items()}
        for signal in named_blinker_signals():
            signals.setdefault(id(signal), signal)
        candidates = sender_candidates()
        for signal in signals.values():
            signal_name = naming.signal_label(signal)[0]
            for connection in connections(signal, candidates):
                key = naming.describe_receiver(connection.receiver)
                links = self.connected.setdefault(key, [])
                link = (signal_name, sender_text(connection))
                if link not in links:
                    links.append(link)

    def record(self, trace: Trace) -> None:
        """Count the receivers ``trace`` (one test's) ran: once per test, and per call."""
        self.tests += 1
        if trace.truncated:
            self.truncated_tests += 1
        seen: dict[Key, int] = {}
        for call in trace.calls:
            key = (call.receiver_name, call.filename, call.lineno)
            seen[key] = seen.get(key, 0) + 1
        for key, calls in seen.items():
            counts = self.ran.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += calls

    def merge(self, other: CoverageData) -> None:
        """Add another process's data (a pytest-xdist worker's) to this one."""
        for key, links in other.connected.items():
            mine = self.connected.setdefault(key, [])
            mine.extend(link for link in links if link not in mine)
        for key, (tests, calls) in other.ran.items():
            counts = self.ran.setdefault(key, [0, 0])
            counts[0] += tests
            counts[1] += calls
        self.tests += other.tests
        self.truncated_tests += other.truncated_tests
        self.django_ready = self.django_ready or other.django_ready

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, for pytest-xdist's ``workeroutput``."""
        return {
            "connected": [
                [list(key), [list(link) for link in links]] for key, links in self.connected.items()
            ],
            "ran": [[list(key), counts] for key, counts in self.ran.items()],
            "tests": self.tests,
            "truncated_tests": self.truncated_tests,
            "django_ready": self.django_ready,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CoverageData:
        return cls(
            connected={_key(key): _link_list(links) for key, links in data["connected"]},
            ran={_key(key): [int(counts[0]), int(counts[1])] for key, counts in data["ran"]},
            tests=int(data["tests"]),
            truncated_tests=int(data["truncated_tests"]),
            django_ready=bool(data["django_ready"]),
        )

    def report(self, include: Iterable[str] = ()) -> CoverageReport:
        """The receivers that count, with their counts; never-run ones first."""
        globs = [glob for glob in include if glob]
        receivers = []
        for key, links in self.connected.items():
            name, filename, lineno = key
            if not is_project_receiver(name, filename, globs):
                continue
            tests, calls = self.ran.get(key, (0, 0))
            receivers.append(ReceiverCoverage(name, filename, lineno, list(links), tests, calls))
        receivers.sort(
            key=lambda r: (r.tests > 0, r.location.rpartition(":")[0], r.lineno or 0, r.receiver)
        )
        return CoverageReport(receivers, self.truncated_tests, self.django_ready)


def _key(value: Sequence[Any]) -> Key:
    name, filename, lineno = value
    return (
        str(name),
        None if filename is None else str(filename),
        None if lineno is None else int(lineno),
    )

"""Snapshot assertions: a trace's normalised tree compared with a file next to the test.

``assert_matches_snapshot(trace)`` renders :func:`signaltrace.normalize.normalize_trace`
as text and compares it with ``__signal_snapshots__/<module>/<test>.txt`` beside
the test module (``<test>.<name>.txt`` when a test takes several snapshots).
A missing file fails with instructions, a different one with a unified diff;
with ``pytest --signaltrace-update-snapshots`` (or the environment variable
``SIGNALTRACE_UPDATE_SNAPSHOTS=1``) the file is written instead.

Which test is running: under pytest, the one the plugin recorded in
:data:`signaltrace._testrun.STATE`; otherwise the ``unittest.TestCase`` whose
method is on the call stack (its ``id()``); otherwise there is no test, and
``name=`` is required: the file is then named after it, in the
``__signal_snapshots__`` directory beside the calling module.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import sys
import unittest
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final

from signaltrace._format import short_path
from signaltrace._testrun import ENV_UPDATE, STATE, SnapshotTest, update_requested
from signaltrace.normalize import normalize_trace

from .engine import SignalTraceAssertionError

if TYPE_CHECKING:
    from signaltrace.traces import Trace

__all__ = [
    "SNAPSHOT_DIR",
    "SUFFIX",
    "assert_matches_snapshot",
    "file_stem",
    "snapshot_dir",
    "snapshot_path",
]

__unittest = True  # unittest leaves this module's frames out of tracebacks

#: The directory beside a test module that holds its snapshots.
SNAPSHOT_DIR: Final = "__signal_snapshots__"
SUFFIX: Final = ".txt"

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.,=+@\[\]-]")
_MAX_STEM: Final = 120


def _safe(text: str) -> str:
    """``text`` as a portable file name part: unsafe characters become ``_``; long ones hashed."""
    safe = _UNSAFE.sub("_", text)
    if len(safe) > _MAX_STEM:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe[: _MAX_STEM - 13]}-{digest}"
    return safe


def snapshot_dir(module_file: str | Path) -> Path:
    """``<dir>/__signal_snapshots__/<module>``: where the snapshots of one test module live."""
    path = Path(module_file)
    return path.parent / SNAPSHOT_DIR / path.stem


def file_stem(test_name: str) -> str:
    """The file name part for a test: ``TestClass.test_it[1]`` (``::`` becomes ``.``)."""
    return _safe(test_name.replace("::", "."))


def snapshot_path(test: SnapshotTest, name: str | None = None) -> Path:
    """The file of ``test``'s snapshot (``name``: one of several)."""
    parts = [file_stem(test.name)] if test.name else []
    if name is not None:
        parts.append(_safe(name))
    return snapshot_dir(test.module_file) / (".".join(parts) + SUFFIX)


def _in_signaltrace(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__")
    return isinstance(module, str) and (
        module == "signaltrace" or module.startswith("signaltrace.")
    )


def _unittest_test(frame: FrameType | None) -> SnapshotTest | None:
    """The ``unittest.TestCase`` whose method is running, found on the call stack."""
    depth = 0
    while frame is not None and depth < 64:
        candidate = (
            frame.f_locals.get("self") if frame.f_code.co_varnames[:1] == ("self",) else None
        )
        if isinstance(candidate, unittest.TestCase):
            cls = type(candidate)
            module = sys.modules.get(cls.__module__)
            module_file = getattr(module, "__file__", None)
            if isinstance(module_file, str):
                method = getattr(candidate, "_testMethodName", "test")
                return SnapshotTest(module_file, f"{cls.__qualname__}.{method}", candidate.id())
        frame = frame.f_back
        depth += 1
    return None


def _caller_file(frame: FrameType | None) -> str:
    while frame is not None and _in_signaltrace(frame):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else "snapshot"


def _locate(name: str | None, frame: FrameType | None) -> tuple[SnapshotTest, Path]:
    test = STATE.current or _unittest_test(frame)
    if test is None:
        if name is None:
            raise TypeError(
                "assert_matches_snapshot() outside a test needs name=: the snapshot file is "
                "named after it, beside the calling module"
            )
        test = SnapshotTest(_caller_file(frame), "", "")
    return test, snapshot_path(test, name)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def _update_advice() -> str:
    return (
        "pytest --signaltrace-update-snapshots (outside pytest: the environment variable "
        f"{ENV_UPDATE}=1)"
    )


def assert_matches_snapshot(
    trace: Trace, name: str | None = None, *, queries: bool = False
) -> Path:
    """Assert that the trace's normalised tree is the one in its snapshot file.

    The tree (see ``signaltrace.normalize.normalize_trace()``) keeps signals,
    senders, receivers, outcomes, flags such as ``created``, nesting, skipped
    operations and enqueued tasks; it leaves out times, line numbers and memory
    addresses, and numbers primary keys per trace (``pk=#1``).

    :param name: tells apart several snapshots of one test (the file is then
        ``<test>.<name>.txt``); required outside a test.
    :param queries: also compare each receiver call's query and ``on_commit``
        counts (:setting:`RECORD_DB`).
    :returns: the snapshot file's path.
    :raises SignalTraceAssertionError: when the file is missing or differs, unless
        snapshots are being updated (``--signaltrace-update-snapshots``,
        ``SIGNALTRACE_UPDATE_SNAPSHOTS=1``): then the file is (re)written.

    .. versionadded:: 0.1.0
    """
    __tracebackhide__ = True
    if name is not None and (type(name) is not str or not name):
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    running = STATE.current  # a test run by pytest: the plugin resets STATE.taken per test
    test, path = _locate(name, sys._getframe(1))
    key = str(path.resolve())
    taken = STATE.taken.setdefault(running, set()) if running is not None else set()
    if key in taken:
        raise TypeError(
            f"{test.test_id} already took the snapshot {short_path(key)}: "
            "pass name= to take several snapshots in one test"
        )
    taken.add(key)
    STATE.used.add(key)
    actual = normalize_trace(trace, queries=queries).text()
    where = f"of {test.test_id}" if test.test_id else f"named {name!r}"
    if not path.exists():
        if update_requested():
            _write(path, actual)
            STATE.written.append(key)
            return path
        raise SignalTraceAssertionError(
            f"No signal snapshot {where.replace('of ', 'for ', 1)} yet: "
            f"{short_path(key)} does not exist.\n\n"
            f"Write it with {_update_advice()}, check that it shows what should happen, "
            f"and commit it. This run's tree:\n\n{actual}",
            trace=trace,
        )
    expected = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    if expected == actual:
        return path
    if update_requested():
        _write(path, actual)
        STATE.updated.append(key)
        return path
    diff = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "snapshot", "this run", lineterm="", n=5
    )
    raise SignalTraceAssertionError(
        f"The signal trace {where} does not match its snapshot {short_path(key)} "
        "(- snapshot, + this run):\n\n" + "\n".join(diff) + "\n\n"
        f"If the change is intended, rewrite the snapshot with {_update_advice()}.",
        trace=trace,
    )

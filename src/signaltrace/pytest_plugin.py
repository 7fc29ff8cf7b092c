"""pytest plugin: the ``signal_trace`` fixture, the ``signaltrace`` marker, the report.

- ``signal_trace`` captures every dispatch made during the test and yields the
  :class:`~signaltrace.Trace` (with the ``assert_*`` methods of
  :mod:`signaltrace.testing`). It is set up after the test's other fixtures, so
  data that fixtures such as ``admin_user`` create is not in the trace.
- ``@pytest.mark.signaltrace(fail_on_errors=True, report=None, all_threads=False,
  max_events=None)`` uses the fixture for a test that does not request it and
  tunes it.
- When such a test fails, its report gets a "signal trace" section with the
  tree (ini option ``signaltrace_report``, default true; the marker's
  ``report=`` wins).
- When the session starts, before any test module is imported, the receiver
  checks ``signaltrace.W001`` (a ``signals.py`` nothing imported) and ``W002``
  (a receiver connected twice) run and each problem becomes a
  :class:`SignalTraceCheckWarning` in pytest's warnings summary (ini option
  ``signaltrace_checks``, default true): a test that imports the forgotten
  module itself would otherwise pass while production is broken.
- ``--signaltrace-coverage`` (ini ``signaltrace_coverage``) records which
  connected receivers ran in at least one test and reports it in a "signal
  receiver coverage" section (``--signaltrace-coverage-json=PATH``,
  ``--signaltrace-coverage-fail-under=PCT``, ini
  ``signaltrace_coverage_include``); each test runs inside a
  ``capture(all_threads=True)``. Under pytest-xdist the workers send their data
  to the controller (``workeroutput``), which merges and reports it.
- ``signal_trace.assert_matches_snapshot()`` learns the running test from here
  (``signaltrace._testrun.STATE``); ``--signaltrace-update-snapshots`` writes
  missing snapshots and rewrites changed ones; at the end of the session the
  snapshot files no test used are listed (only for test modules that ran in full).

Nothing here imports Django at module level: the fixture, the session-start
checks and the coverage import it lazily; the fixture skips the test when Django
settings are not configured, and the checks and the coverage run only once
Django is set up.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pytest

from ._testrun import STATE, SnapshotTest

if TYPE_CHECKING:
    from .capturing import capture
    from .testing.receiver_coverage import CoverageData, CoverageReport
    from .traces import Trace

__all__ = ["SignalTraceCheckWarning", "signal_trace"]

FIXTURE: Final = "signal_trace"
MARKER: Final = "signaltrace"
INI_REPORT: Final = "signaltrace_report"
INI_CHECKS: Final = "signaltrace_checks"
INI_COVERAGE: Final = "signaltrace_coverage"
INI_COVERAGE_INCLUDE: Final = "signaltrace_coverage_include"
INI_COVERAGE_FAIL_UNDER: Final = "signaltrace_coverage_fail_under"
SECTION: Final = "signal trace"
COVERAGE_SECTION: Final = "signal receiver coverage"
SNAPSHOT_SECTION: Final = "signal snapshots"
#: The key of the plugin's data in pytest-xdist's ``workeroutput``.
WORKER_OUTPUT: Final = "signaltrace"
#: Marker keywords and their defaults.
MARKER_DEFAULTS: Final[dict[str, Any]] = {
    "fail_on_errors": False,
    "report": None,
    "all_threads": False,
    "max_events": None,
}

_TRACE: Final = pytest.StashKey["Trace"]()
_OPTIONS: Final = pytest.StashKey[dict[str, Any]]()
_SHOWN: Final = pytest.StashKey[bool]()
_COVERAGE: Final = pytest.StashKey["_Coverage"]()
_SNAPSHOTS: Final = pytest.StashKey["_Snapshots"]()
_SAVED_STATE: Final = pytest.StashKey[tuple[Any, ...]]()


class SignalTraceCheckWarning(pytest.PytestWarning):
    """A problem signaltrace's receiver checks found when the test session started.

    ``signaltrace.W001``: an app's ``signals.py`` (or ``receivers.py``) was never
    imported, so its receivers are not connected; ``signaltrace.W002``: a
    receiver is connected twice. Filter it like any warning
    (``filterwarnings``), or turn the checks off with the ``signaltrace_checks``
    ini option.

    .. versionadded:: 0.1.0
    """


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signaltrace", "signal receiver coverage and trace snapshots")
    group.addoption(
        "--signaltrace-coverage",
        action="store_true",
        default=None,
        help="report which connected signal receivers ran in at least one test",
    )
    group.addoption(
        "--signaltrace-coverage-json",
        metavar="PATH",
        default=None,
        help="write the signal receiver coverage as JSON to PATH (turns the coverage on)",
    )
    group.addoption(
        "--signaltrace-coverage-fail-under",
        metavar="PCT",
        type=float,
        default=None,
        help="fail the session if less than PCT percent of the receivers ran "
        "(turns the coverage on)",
    )
    group.addoption(
        "--signaltrace-update-snapshots",
        action="store_true",
        default=False,
        help="write missing signal trace snapshots and rewrite those that differ",
    )
    parser.addini(
        INI_COVERAGE,
        type="bool",
        default=False,
        help="report signal receiver coverage, as --signaltrace-coverage (default: false)",
    )
    parser.addini(
        INI_COVERAGE_INCLUDE,
        type="linelist",
        default=[],
        help="dotted-name globs of the receivers the coverage counts "
        "(default: the project's, not Django's or site-packages')",
    )
    parser.addini(
        INI_COVERAGE_FAIL_UNDER,
        type="string",
        default="",
        help="fail the session below this signal receiver coverage percentage "
        "(as --signaltrace-coverage-fail-under)",
    )
    parser.addini(
        INI_REPORT,
        type="bool",
        default=True,
        help="add a 'signal trace' section to failing tests that use signal_trace (default: true)",
    )
    parser.addini(
        INI_CHECKS,
        type="bool",
        default=True,
        help="warn at session start about signals modules never imported and receivers "
        "connected twice (signaltrace.W001, W002; default: true)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(fail_on_errors=False, report=None, all_threads=False, max_events=None): "
        "trace Django signals during this test with the signal_trace fixture; "
        "fail_on_errors fails the test if a receiver raised (even inside send_robust).",
    )
    # A pytester run in this process has a session of its own: keep the outer one's state.
    config.stash[_SAVED_STATE] = (
        STATE.update,
        STATE.current,
        STATE.used,
        STATE.written,
        STATE.updated,
        STATE.taken,
    )
    STATE.update = bool(config.getoption("signaltrace_update_snapshots", False))
    STATE.current = None
    STATE.used, STATE.written, STATE.updated, STATE.taken = set(), [], [], {}
    config.stash[_SNAPSHOTS] = _Snapshots()
    coverage = _coverage_options(config)
    if coverage is not None:
        config.stash[_COVERAGE] = coverage


def pytest_unconfigure(config: pytest.Config) -> None:
    _leave_session(config)  # a session that failed to start never finished
    # Another plugin's pytest_configure may have failed before this one's ran.
    saved = config.stash.get(_SAVED_STATE, None)
    if saved is not None:
        (STATE.update, STATE.current, STATE.used, STATE.written, STATE.updated, STATE.taken) = saved


# -- receiver coverage ------------------------------------------------------------


@dataclass
class _Coverage:
    """The coverage options, and what this process (or the workers) recorded."""

    include: list[str]
    json_path: str | None
    fail_under: float | None
    #: This process's data (a CoverageData), made once Django is set up.
    data: Any = None
    #: The workers' data, as JSON (pytest-xdist controller).
    workers: list[dict[str, Any]] = field(default_factory=list)
    report: Any = None
    json_written: str | None = None
    #: Why coverage could not run in some test, once.
    problem: str | None = None


def _coverage_options(config: pytest.Config) -> _Coverage | None:
    json_path = config.getoption("signaltrace_coverage_json", None)
    fail_under = config.getoption("signaltrace_coverage_fail_under", None)
    if fail_under is None:
        text = str(config.getini(INI_COVERAGE_FAIL_UNDER) or "").strip()
        if text:
            try:
                fail_under = float(text)
            except ValueError:
                raise pytest.UsageError(
                    f"{INI_COVERAGE_FAIL_UNDER} must be a number, got {text!r}"
                ) from None
    if fail_under is not None and not 0 <= fail_under <= 100:
        raise pytest.UsageError(
            f"--signaltrace-coverage-fail-under must be between 0 and 100, got {fail_under:g}"
        )
    enabled = config.getoption("signaltrace_coverage", None)
    if enabled is None:
        enabled = bool(config.getini(INI_COVERAGE))
    if not (enabled or json_path or fail_under is not None):
        return None
    include = [glob.strip() for glob in config.getini(INI_COVERAGE_INCLUDE) if glob.strip()]
    return _Coverage(include=include, json_path=json_path, fail_under=fail_under)


def _django_ready() -> bool:
    registry = getattr(sys.modules.get("django.apps"), "apps", None)
    return registry is not None and bool(registry.ready)


def _coverage_data(coverage: _Coverage) -> CoverageData | None:
    """This process's :class:`CoverageData`, once Django is set up."""
    if coverage.data is None and _django_ready():
        from .testing.receiver_coverage import CoverageData

        coverage.data = CoverageData()
    return coverage.data  # type: ignore[no-any-return]


def _open_coverage_capture(coverage: _Coverage) -> capture | None:
    data = _coverage_data(coverage)
    if data is None:
        return None
    from .capturing import capture
    from .testing.receiver_coverage import MAX_EVENTS

    try:
        opened = capture(all_threads=True, label="signaltrace coverage", max_events=MAX_EVENTS)
        opened.__enter__()
    except Exception as err:  # never break the test run over coverage
        coverage.problem = coverage.problem or f"{type(err).__name__}: {err}"
        return None
    return opened


def _close_coverage_capture(coverage: _Coverage, opened: capture) -> None:
    try:
        opened.__exit__(None, None, None)
        assert opened.trace is not None
        coverage.data.record(opened.trace)
    except Exception as err:
        coverage.problem = coverage.problem or f"{type(err).__name__}: {err}"


def _take_connected(coverage: _Coverage) -> None:
    data = _coverage_data(coverage)
    if data is None:
        return
    try:
        data.take_connected()
    except Exception as err:
        data.django_ready = True  # it is: what failed is reading the signals
        coverage.problem = coverage.problem or f"{type(err).__name__}: {err}"


def _finish_coverage(session: pytest.Session, coverage: _Coverage) -> None:
    """Merge the workers' data, write the JSON, fail the session under the minimum."""
    from .testing.receiver_coverage import CoverageData

    if coverage.workers:
        data = CoverageData()
        for worker in coverage.workers:
            data.merge(CoverageData.from_json(worker))
    else:
        _take_connected(coverage)
        data = coverage.data if coverage.data is not None else CoverageData()
    report = coverage.report = data.report(coverage.include)
    if coverage.json_path:
        path = Path(session.config.invocation_params.dir, coverage.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        coverage.json_written = str(path)
    below = coverage.fail_under is not None and report.fails_under(coverage.fail_under)
    if below and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _coverage_summary(terminal: Any, coverage: _Coverage) -> None:
    report: CoverageReport = coverage.report
    terminal.ensure_newline()
    terminal.section(COVERAGE_SECTION)
    for line in report.lines():
        terminal.write_line(line)
    if coverage.problem:
        terminal.write_line(f"(signaltrace could not measure every test: {coverage.problem})")
    if coverage.json_written:
        terminal.write_line(f"Wrote the signal receiver coverage to {coverage.json_written}")
    minimum = coverage.fail_under
    if minimum is not None:
        if report.fails_under(minimum):
            terminal.write_line(
                f"FAIL Required signal receiver coverage of {minimum:g}% not reached. "
                f"Total signal receiver coverage: {report.percent:.2f}%",
                red=True,
                bold=True,
            )
        else:
            terminal.write_line(
                f"Required signal receiver coverage of {minimum:g}% reached. "
                f"Total signal receiver coverage: {report.percent:.2f}%",
                green=True,
            )


# -- snapshots -----------------------------------------------------------------------


@dataclass(eq=False)  # told apart by identity in _CURRENT_SNAPSHOTS
class _Snapshots:
    """What the session knows about test modules and their snapshot files."""

    #: Module file -> names of its collected tests.
    modules: dict[str, set[str]] = field(default_factory=dict)
    #: Modules some of whose tests were deselected or failed to collect.
    partial: set[str] = field(default_factory=set)
    #: Node ids (module paths, classes) whose collection failed.
    failed_collections: set[str] = field(default_factory=set)
    #: Node id -> (module file, test name), for the tests collected here.
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Node ids with a failed or skipped phase, and those that reported at all.
    bad: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    #: The workers' data, as JSON (pytest-xdist controller).
    workers: list[dict[str, Any]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        passed = [self.nodes[n] for n in self.seen - self.bad if n in self.nodes]
        return {
            "modules": {module: sorted(names) for module, names in self.modules.items()},
            "partial": sorted(self.partial),
            "passed": sorted(passed),
            "used": sorted(STATE.used),
            "written": list(STATE.written),
            "updated": list(STATE.updated),
        }


def _test_name(item: pytest.Item) -> str:
    """``test_it``, ``TestClass::test_it[1]``: the node id after the module's path."""
    nodeid = item.nodeid
    return nodeid.split("::", 1)[1] if "::" in nodeid else item.name


def _item_module(item: pytest.Item) -> str:
    return str(Path(item.path).resolve())


def _owner(filename: str, stems: dict[str, str]) -> str | None:
    """The test whose snapshot ``filename`` is (``<stem>.txt`` or ``<stem>.<name>.txt``)."""
    from .assertions.snapshot import SUFFIX

    base = filename[: -len(SUFFIX)]
    best = None
    for stem, name in stems.items():
        if (base == stem or base.startswith(stem + ".")) and (
            best is None or len(stem) > len(best[0])
        ):
            best = (stem, name)
    return best[1] if best is not None else None


def _stale_snapshots(data: dict[str, Any]) -> list[str]:
    """Snapshot files no test used: in modules that ran in full, and beside no module."""
    from .assertions.snapshot import SNAPSHOT_DIR, SUFFIX, file_stem, snapshot_dir

    used = set(data["used"])
    passed = {tuple(pair) for pair in data["passed"]}
    stale: list[str] = []
    for module, names in data["modules"].items():
        if module in data["partial"]:
            continue
        folder = snapshot_dir(module)
        if not folder.is_dir():
            continue
        stems = {file_stem(name): name for name in names}
        for path in sorted(folder.glob("*" + SUFFIX)):
            key = str(path.resolve())
            if key in used:
                continue
            owner = _owner(path.name, stems)
            # A test that failed or was skipped may not have reached its assertion.
            if owner is None or (module, owner) in passed:
                stale.append(key)
    # A module's snapshot folder whose module is gone.
    for parent in sorted({Path(module).parent for module in data["modules"]}):
        root = parent / SNAPSHOT_DIR
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not (parent / f"{folder.name}.py").exists():
                stale.extend(str(p.resolve()) for p in sorted(folder.glob("*" + SUFFIX)))
    return stale


def _merge_snapshot_data(datas: list[dict[str, Any]]) -> dict[str, Any]:
    modules: dict[str, set[str]] = {}
    merged: dict[str, Any] = {"partial": set(), "passed": [], "used": set()}
    merged.update(written=[], updated=[])
    for data in datas:
        for module, names in data["modules"].items():
            modules.setdefault(module, set()).update(names)
        merged["partial"].update(data["partial"])
        merged["passed"].extend(data["passed"])
        merged["used"].update(data["used"])
        merged["written"].extend(data["written"])
        merged["updated"].extend(data["updated"])
    merged["modules"] = modules
    return merged


def _finish_snapshots(session: pytest.Session, snapshots: _Snapshots) -> None:
    datas = snapshots.workers or [snapshots.to_json()]
    data = _merge_snapshot_data(datas)
    snapshots.written, snapshots.updated = data["written"], data["updated"]
    try:
        snapshots.stale = _stale_snapshots(data)
    except OSError:  # an unreadable folder: no report rather than a broken session
        snapshots.stale = []


def _relative(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when it is inside it, else as it is."""
    inside = path.startswith(os.path.join(str(root), ""))
    return os.path.relpath(path, root) if inside else path


def _snapshot_summary(terminal: Any, config: pytest.Config, snapshots: _Snapshots) -> None:
    root = config.invocation_params.dir
    if not (snapshots.written or snapshots.updated or snapshots.stale):
        return
    terminal.ensure_newline()
    terminal.section(SNAPSHOT_SECTION)
    for verb, paths in (("Wrote", snapshots.written), ("Rewrote", snapshots.updated)):
        if paths:
            terminal.write_line(f"{verb} {len(paths)} snapshot{'s' if len(paths) != 1 else ''}:")
            for path in paths:
                terminal.write_line(f"  {_relative(path, root)}")
    if snapshots.stale:
        n = len(snapshots.stale)
        terminal.write_line(
            f"{n} snapshot file{'s' if n != 1 else ''} no test used "
            "(delete if their tests are gone or no longer take them):",
            yellow=True,
        )
        for path in snapshots.stale:
            terminal.write_line(f"  {_relative(path, root)}")


# -- session hooks ----------------------------------------------------------------------


#: The running sessions' snapshot data, innermost last (pytester runs sessions in
#: sessions); the first entry takes what a hook called outside a session reports.
_CURRENT_SNAPSHOTS: Final[list[_Snapshots]] = [_Snapshots()]


def _leave_session(config: pytest.Config) -> None:
    with contextlib.suppress(KeyError, ValueError):
        _CURRENT_SNAPSHOTS.remove(config.stash[_SNAPSHOTS])


def pytest_deselected(items: list[pytest.Item]) -> None:
    _CURRENT_SNAPSHOTS[-1].partial.update(_item_module(item) for item in items)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        # A module (or a class in it) that failed to collect: not all its tests run.
        _CURRENT_SNAPSHOTS[-1].failed_collections.add(report.nodeid.split("::", 1)[0])


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    snapshots = config.stash[_SNAPSHOTS]
    for arg in config.args:  # `pytest test_x.py::test_y` collects part of test_x.py
        if "::" in arg:
            path = Path(config.invocation_params.dir, arg.split("::", 1)[0])
            snapshots.partial.add(str(path.resolve()))
    for item in session.items:
        module = _item_module(item)
        name = _test_name(item)
        snapshots.modules.setdefault(module, set()).add(name)
        snapshots.nodes[item.nodeid] = (module, name)
        if item.nodeid.split("::", 1)[0] in snapshots.failed_collections:
            snapshots.partial.add(module)
    coverage = config.stash.get(_COVERAGE, None)
    if coverage is not None:
        _take_connected(coverage)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    snapshots = _CURRENT_SNAPSHOTS[-1]
    snapshots.seen.add(report.nodeid)
    if report.failed or report.skipped:
        snapshots.bad.add(report.nodeid)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    previous = STATE.current
    STATE.current = SnapshotTest(_item_module(item), _test_name(item), item.nodeid)
    STATE.taken = {}
    coverage = item.config.stash.get(_COVERAGE, None)
    opened = _open_coverage_capture(coverage) if coverage is not None else None
    try:
        return (yield)
    finally:
        STATE.current = previous
        if opened is not None:
            assert coverage is not None
            _close_coverage_capture(coverage, opened)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    snapshots = config.stash[_SNAPSHOTS]
    coverage = config.stash.get(_COVERAGE, None)
    _leave_session(config)
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller reports
        output: dict[str, Any] = {"snapshots": snapshots.to_json(), "coverage": None}
        if coverage is not None:
            _take_connected(coverage)
            data = coverage.data
            output["coverage"] = data.to_json() if data is not None else None
        # (A worker faked by a test may lack it.)
        workeroutput = getattr(config, "workeroutput", {})
        workeroutput[WORKER_OUTPUT] = json.dumps(output)
        return
    _finish_snapshots(session, snapshots)
    if coverage is not None:
        _finish_coverage(session, coverage)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: a worker finished; keep what it sent (nothing, if it crashed)."""
    text = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
    if not text:
        return
    output = json.loads(text)
    config = node.config
    config.stash[_SNAPSHOTS].workers.append(output["snapshots"])
    coverage = config.stash.get(_COVERAGE, None)
    if coverage is not None and output["coverage"] is not None:
        coverage.workers.append(output["coverage"])


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    _snapshot_summary(terminalreporter, config, config.stash[_SNAPSHOTS])
    coverage = config.stash.get(_COVERAGE, None)
    if coverage is not None:
        _coverage_summary(terminalreporter, coverage)


def _check_warnings() -> list[str]:
    """The W001 and W002 messages for the current project, if Django is set up.

    Django is not imported here: if nothing has set it up (pytest-django does
    while pytest configures), there is nothing to check.
    """
    registry = getattr(sys.modules.get("django.apps"), "apps", None)
    if registry is None or not registry.ready:
        return []
    from .checks import check_duplicate_receivers, check_unimported_signals

    messages = [*check_unimported_signals(), *check_duplicate_receivers()]
    # Both checks always give a hint.
    return [f"{message.id}: {message.msg}\nHINT: {message.hint}" for message in messages]


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    _CURRENT_SNAPSHOTS.append(config.stash[_SNAPSHOTS])
    # Before collection: a test module importing the forgotten signals module
    # would hide it. Under pytest-xdist the controller reports for everyone.
    if not config.getini(INI_CHECKS) or hasattr(config, "workerinput"):
        return
    try:
        texts = _check_warnings()
    except Exception as err:  # a bug of ours must not stop the session
        texts = [
            "signaltrace could not run its receiver checks (W001, W002): "
            f"{type(err).__name__}: {err}"
        ]
    for text in texts:
        try:
            config.issue_config_time_warning(SignalTraceCheckWarning(text), stacklevel=2)
        except SignalTraceCheckWarning as err:  # an error by filterwarnings / -W error
            raise pytest.UsageError(
                f"{err}\n(This SignalTraceCheckWarning is an error under your warning "
                f"filters: fix it, filter it, or set the {INI_CHECKS} ini option to false.)"
            ) from None


def _marker_options(node: pytest.Item) -> dict[str, Any]:
    """The merged ``@pytest.mark.signaltrace`` keywords of ``node`` (closest wins).

    :raises TypeError: on positional arguments, unknown keywords or wrong types.
    """
    options = dict(MARKER_DEFAULTS)
    for mark in reversed(list(node.iter_markers(MARKER))):
        if mark.args:
            raise TypeError(f"@pytest.mark.{MARKER}() takes keyword arguments only")
        unknown = sorted(set(mark.kwargs) - set(MARKER_DEFAULTS))
        if unknown:
            raise TypeError(
                f"@pytest.mark.{MARKER}() got unknown keyword {', '.join(unknown)}; "
                f"valid: {', '.join(MARKER_DEFAULTS)}"
            )
        options.update(mark.kwargs)
    for key in ("fail_on_errors", "all_threads"):
        if type(options[key]) is not bool:
            raise TypeError(f"@pytest.mark.{MARKER}({key}=...) must be a bool")
    if options["report"] is not None and type(options["report"]) is not bool:
        raise TypeError(f"@pytest.mark.{MARKER}(report=...) must be a bool or None")
    return options


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Set the fixture up after every other fixture of the test (marked tests
    # get it too), so what db, admin_user & co. do is not in the trace.
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        names = item.fixturenames
        if FIXTURE in names or item.get_closest_marker(MARKER) is not None:
            item.fixturenames = [name for name in names if name != FIXTURE] + [FIXTURE]


def _signal_trace(request: pytest.FixtureRequest) -> Iterator[Trace]:
    from django.conf import settings

    if not settings.configured:
        pytest.skip(
            "signal_trace needs Django settings: set DJANGO_SETTINGS_MODULE "
            "(or pytest-django's --ds) or call settings.configure()"
        )
    from . import testing  # noqa: F401  (names its error signaltrace.testing.SignalTraceAssertionError)
    from .capturing import capture

    node = request.node
    problem = ""
    try:
        options = _marker_options(node)
    except TypeError as err:
        problem = str(err)
    if problem:
        pytest.fail(problem, pytrace=False)
    with capture(
        label=node.name, all_threads=options["all_threads"], max_events=options["max_events"]
    ) as trace:
        node.stash[_OPTIONS] = options
        node.stash[_TRACE] = trace
        yield trace


@pytest.fixture
def signal_trace(request: pytest.FixtureRequest) -> Iterator[Trace]:
    """Capture every signal dispatch during the test and yield the ``Trace``.

    .. code-block:: python

        def test_register(client, signal_trace):
            client.post("/accounts/register/", {...})
            signal_trace.assert_called(create_user_profile, sender=User, created=True)

    Tune it with ``@pytest.mark.signaltrace(...)``.

    .. versionadded:: 0.1.0
    """
    yield from _signal_trace(request)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    result = yield
    trace = item.stash.get(_TRACE, None)
    if trace is not None and item.stash[_OPTIONS]["fail_on_errors"] and trace.errors:
        from .testing import SignalTraceAssertionError, assert_no_errors

        try:
            assert_no_errors(trace)
        except SignalTraceAssertionError as err:
            message = f"@pytest.mark.{MARKER}(fail_on_errors=True): {err}"
        item.stash[_SHOWN] = True
        pytest.fail(message, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    trace = item.stash.get(_TRACE, None)
    if report.when != "call" or not report.failed or trace is None:
        return report
    enabled = item.stash[_OPTIONS]["report"]
    if enabled is None:
        enabled = item.config.getini(INI_REPORT)
    if not enabled or item.stash.get(_SHOWN, False):
        return report
    from .assertions.text import tree
    from .testing import SignalTraceAssertionError

    if call.excinfo is None or not call.excinfo.errisinstance(SignalTraceAssertionError):
        report.sections.append((SECTION, tree(trace, numbered=False)))
    return report

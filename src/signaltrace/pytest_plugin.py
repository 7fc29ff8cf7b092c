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

Nothing here imports Django at module level: the fixture and the session-start
checks import it lazily; the fixture skips the test when Django settings are
not configured, and the checks run only once Django is set up.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from .traces import Trace

__all__ = ["SignalTraceCheckWarning", "signal_trace"]

FIXTURE: Final = "signal_trace"
MARKER: Final = "signaltrace"
INI_REPORT: Final = "signaltrace_report"
INI_CHECKS: Final = "signaltrace_checks"
SECTION: Final = "signal trace"
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
    # Before collection: a test module importing the forgotten signals module
    # would hide it. Under pytest-xdist the controller reports for everyone.
    config = session.config
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

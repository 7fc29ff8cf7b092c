"""Keep signaltrace installed and capturing for a whole Django test run.

Armed by ``sitecustomize.py`` (same folder) at interpreter start-up when
``SIGNALTRACE_TRANSPARENCY=1``. Django's ``tests/runtests.py`` configures its
settings and then calls ``django.setup()`` itself, so this module wraps
``django.setup``: once the original has run (settings are usable), it calls
``signaltrace.install()`` and opens ``signaltrace.capture(all_threads=True)``
without ever closing it. Every signal sent from then on, by the test database
set-up and by every test, goes through signaltrace's hook and is recorded.

At interpreter exit it prints one line::

    signaltrace transparency: recorded N dispatches, M receiver calls (...)

and ends the process with status 3 (whatever the tests did) if the hook was not
in effect: ``django.setup()`` never ran, ``signaltrace.is_installed()`` is
false, ``django.dispatch.Signal``'s send methods are not signaltrace's, or no
receiver call at all was recorded. A failure to install or to open the capture
ends the process at once with status 2.

Environment:

``SIGNALTRACE_TRANSPARENCY=1``
    Arms the hook (read by ``sitecustomize.py``; removed from ``os.environ`` once
    read, so child processes run untraced and unchecked).
``SIGNALTRACE_TRANSPARENCY_MAX_EVENTS``
    ``max_events`` for the capture; default 100,000,000 so that no dispatch
    falls back to the untraced path because the trace is full.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import traceback
from collections import Counter
from typing import Any

PREFIX = "signaltrace transparency:"
DEFAULT_MAX_EVENTS = 100_000_000
EXIT_INSTALL_FAILED = 2
EXIT_NOT_ACTIVE = 3

_state: dict[str, Any] = {
    "armed": False,
    "setup_calls": 0,
    "capture": None,
    "trace": None,
}


def _say(message: str) -> None:
    sys.stdout.flush()
    print(f"{PREFIX} {message}", file=sys.stderr)
    sys.stderr.flush()


def _die(status: int, message: str, *, exc: bool = False) -> None:
    _say(f"ERROR: {message}")
    if exc:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def arm() -> None:
    """Wrap ``django.setup`` and register the exit report. Idempotent."""
    if _state["armed"]:
        return
    os.environ.pop("SIGNALTRACE_TRANSPARENCY", None)
    max_events = int(os.environ.get("SIGNALTRACE_TRANSPARENCY_MAX_EVENTS", DEFAULT_MAX_EVENTS))
    if max_events < 1:
        raise ValueError("SIGNALTRACE_TRANSPARENCY_MAX_EVENTS must be a positive int")
    _state["max_events"] = max_events

    import django  # only django/__init__.py: cheap, and nothing is configured yet

    original = django.setup
    if getattr(original, "__signaltrace_transparency__", False):
        return

    @functools.wraps(original)
    def setup(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _state["setup_calls"] += 1
        if _state["capture"] is None:
            _start()
        return result

    setup.__signaltrace_transparency__ = True  # type: ignore[attr-defined]
    django.setup = setup
    # Registered before the program's own handlers, so (atexit being LIFO) it
    # runs after them, when the test run is completely over.
    atexit.register(_report)
    _state["armed"] = True


def _start() -> None:
    try:
        import signaltrace

        signaltrace.install()
        if not signaltrace.is_installed():
            raise RuntimeError("signaltrace.install() returned but is_installed() is False")
        _check_hooked()
        capture = signaltrace.capture(
            all_threads=True,
            label="django-transparency",
            max_events=_state["max_events"],
        )
        trace = capture.__enter__()  # never exited: the capture spans the whole run
    except BaseException:
        _die(EXIT_INSTALL_FAILED, "installing signaltrace or opening the capture failed:", exc=True)
        raise  # unreachable
    _state["capture"] = capture
    _state["trace"] = trace
    import django

    _say(
        f"signaltrace installed and capturing (Django {django.get_version()}, "
        f"Python {sys.version.split()[0]}, max_events={_state['max_events']})"
    )


def _check_hooked() -> None:
    from django.dispatch import Signal

    foreign = [
        name
        for name in ("send", "send_robust", "asend", "asend_robust")
        if getattr(Signal.__dict__.get(name), "__module__", None) != "signaltrace._send"
    ]
    if foreign:
        raise RuntimeError(f"django.dispatch.Signal methods not hooked by signaltrace: {foreign}")


def _report() -> None:
    try:
        _report_or_die()
    except SystemExit:
        raise
    except BaseException:
        _die(EXIT_NOT_ACTIVE, "the exit report itself failed:", exc=True)


def _report_or_die() -> None:
    if _state["capture"] is None:
        _die(
            EXIT_NOT_ACTIVE,
            "django.setup() was never called in this process, so signaltrace was "
            "never installed and nothing was traced.",
        )
    import signaltrace

    trace = _state["trace"]
    dispatches = trace.dispatches
    calls = trace.calls
    methods = Counter(d.method for d in dispatches)
    signals = {d.signal_path for d in dispatches}
    async_calls = sum(1 for c in calls if c.is_async)
    errors = sum(1 for c in calls if c.error is not None)
    open_dispatches = sum(1 for d in dispatches if d.duration_ns is None)
    open_calls = sum(1 for c in calls if c.duration_ns is None)
    by_method = ", ".join(f"{m}={n}" for m, n in sorted(methods.items())) or "none"
    _say(
        f"recorded {len(dispatches)} dispatches, {len(calls)} receiver calls "
        f"({async_calls} async, {errors} raised; {len(signals)} distinct signals; "
        f"by method: {by_method}; unfinished: {open_dispatches} dispatches, "
        f"{open_calls} calls; dropped events: {trace.dropped})"
    )
    problems = []
    installed = signaltrace.is_installed()
    if not installed:
        problems.append("signaltrace.is_installed() is False at exit")
    try:
        _check_hooked()
    except RuntimeError as err:
        problems.append(str(err))
    if not calls:
        problems.append("zero receiver calls were recorded: the hook was not active")
    if trace.dropped:
        _say(f"WARNING: {trace.dropped} events were dropped (max_events reached)")
    if problems:
        _die(EXIT_NOT_ACTIVE, "; ".join(problems))
    _say(
        f"OK: is_installed()={installed}, Signal send methods hooked, capture open for the whole run"
    )

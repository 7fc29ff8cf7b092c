"""Real services for the store tests: Debian's ``redis-server`` and gunicorn, as subprocesses.

Nothing is mocked: each fixture starts the real program on a free port of
127.0.0.1, waits (bounded) until it answers, and stops it in teardown. A
missing program fails the test with what to install (``make test`` installs
``redis-server`` with apt-get and gunicorn with the ``test`` extra).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a service gets to start answering.
START_S = 30.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check, timeout: float, what: str, process: subprocess.Popen | None = None):
    """Call ``check()`` until it returns a true value (returned) or ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:  # pragma: no cover - a failure
            raise AssertionError(f"{what} exited with status {process.returncode}")
        try:
            value = check()
        except Exception as err:
            last = err
        else:
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s (last error: {last!r})")  # pragma: no cover


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate ``process`` (and its process group), killing it if it does not exit."""
    if process.poll() is not None:  # pragma: no cover - it died first
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - it ignored SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def _ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


@contextlib.contextmanager
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A throwaway ``redis-server`` (no persistence); yields its ``redis://`` URL."""
    program = shutil.which("redis-server")
    if program is None:  # pragma: no cover - make test installs it
        pytest.fail("redis-server is not installed: apt-get install redis-server (make test does)")
    port = free_port()
    process = subprocess.Popen(
        [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(lambda: _ping(port), START_S, "redis-server answers PING", process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """``GET url``: status, headers, body (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, headers={"Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:  # pragma: no cover - the tests expect 200s
        return err.code, dict(err.headers), err.read()


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 3) -> Iterator[str]:
    """gunicorn serving ``tests.gunicorn_settings``'s WSGI app; yields its base URL.

    Its log goes to a temporary file, shown if it does not start.
    """
    if importlib.util.find_spec("gunicorn") is None:  # pragma: no cover - in the test extra
        pytest.fail("gunicorn is not installed: pip install -e '.[test]' (make test does)")
    from gunicorn.config import KNOWN_SETTINGS

    # gunicorn 25+ opens a control socket in ~/.gunicorn: not for a throwaway server.
    extra = ["--no-control-socket"] * any(
        setting.name == "control_socket_disable" for setting in KNOWN_SETTINGS
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        *extra,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        # One request per connection: each is accepted by whichever worker is free.
        "--keep-alive",
        "0",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "tests.gunicorn_settings:application",
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.gunicorn_settings",
        **env,
    }
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            try:
                wait_until(lambda: get(f"{base}/pid/", 2)[0] == 200, START_S, "gunicorn", process)
            except AssertionError as err:  # pragma: no cover - it did not start
                log.seek(0)
                raise AssertionError(f"{err}\n{log.read().decode(errors='replace')}") from None
            yield base
        finally:
            stop(process)

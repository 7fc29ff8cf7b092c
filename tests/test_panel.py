"""The django-debug-toolbar panel: its cases run in a pytest process of their own.

Installing debug_toolbar registers system checks and a ``setting_changed``
receiver for the whole process (and its models need the app installed), so the
cases in ``tests/panel_cases.py`` run with ``tests/settings_toolbar.py`` in a
subprocess, under coverage when this run is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _command() -> list[str]:
    try:
        import coverage
    except ImportError:  # pragma: no cover - coverage is in the test extra
        current = None
    else:
        current = coverage.Coverage.current()
    if current is None:  # pragma: no cover - only when not measuring coverage
        return [sys.executable]
    config = current.config
    return [
        sys.executable,
        *("-m", "coverage", "run", "--parallel-mode"),
        f"--data-file={os.path.abspath(config.data_file)}",
        *([f"--rcfile={config.config_file}"] if config.config_file else []),
    ]


def test_panel_cases():
    """Every case of tests/panel_cases.py passes with the real toolbar installed."""
    result = subprocess.run(
        [
            *_command(),
            "-m",
            "pytest",
            "tests/panel_cases.py",
            "--ds",
            "tests.settings_toolbar",
            "-q",
            "-rfEs",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [0-9.]+s", summary), output

"""How durations and file paths read, in every place signaltrace shows them.

The console tree, the viewer, the toolbar panel, assertion messages, the
receiver map and the request event all call these two functions, so one
receiver call reads the same everywhere.
"""

from __future__ import annotations

import os
import sys

__all__ = ["format_ms", "location", "short_path"]


def format_ms(ns: int | None) -> str:
    """A duration for people: ``<0.01 ms``, ``0.42 ms``, ``3.1 ms``, ``120 ms``; ``running``."""
    if ns is None:
        return "running"
    ms = ns / 1e6
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.1f} ms"
    if ms < 0.01:
        return "<0.01 ms"
    return f"{ms:.2f} ms"


def short_path(filename: str) -> str:
    """``filename`` relative to the current directory or the ``sys.path`` entry holding it.

    Whichever gives the shortest path wins (a project file reads
    ``accounts/signals.py`` under ``runserver``, gunicorn or uvicorn alike; a
    library file reads ``django/db/models/base.py``). A path under none of
    them (the filesystem root does not count), or not absolute, is returned as
    it is.
    """
    if not filename or not os.path.isabs(filename):
        return filename
    cwd = os.getcwd()
    best = filename
    entries: list[object] = [cwd, *sys.path]
    for entry in entries:
        if not isinstance(entry, str):
            continue
        root = os.path.join(os.path.abspath(entry or cwd), "")
        if root != os.sep and filename.startswith(root) and len(filename) - len(root) < len(best):
            best = filename[len(root) :]
    return best


def location(filename: str | None, lineno: int | None) -> str | None:
    """``short/path.py:12``, or ``None`` for code without a file."""
    if not filename:
        return None
    return f"{short_path(filename)}:{lineno}"

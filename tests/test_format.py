"""One presentation of durations and one rule for paths, used everywhere."""

from __future__ import annotations

import os
import sys

import pytest

from signaltrace import _format, panels, render
from signaltrace.viewer import _rows


class TestFormatMs:
    @pytest.mark.parametrize(
        ("ns", "text"),
        [
            (None, "running"),
            (0, "<0.01 ms"),
            (4_000, "<0.01 ms"),
            (50_000, "0.05 ms"),
            (420_000, "0.42 ms"),
            (3_140_000, "3.1 ms"),
            (123_400_000, "123 ms"),
        ],
    )
    def test_text(self, ns, text):
        assert _format.format_ms(ns) == text

    def test_every_consumer_uses_it(self):
        """Console, viewer and panel share the one function, so a call reads the same."""
        assert render.format_ms is _format.format_ms
        assert _rows.format_ms is _format.format_ms
        assert panels.format_ms is _format.format_ms


class TestShortPath:
    def test_shortest_sys_path_entry_wins(self, monkeypatch):
        monkeypatch.setattr(sys, "path", ["/srv/app", "/srv/app/lib"])
        monkeypatch.chdir("/")
        assert _format.short_path("/srv/app/lib/pkg/mod.py") == "pkg/mod.py"

    def test_current_directory(self, monkeypatch, tmp_path):
        monkeypatch.setattr(sys, "path", [])
        monkeypatch.chdir(tmp_path)
        assert _format.short_path(str(tmp_path / "app" / "views.py")) == os.path.join(
            "app", "views.py"
        )

    def test_empty_sys_path_entry_is_the_current_directory(self, monkeypatch, tmp_path):
        """``""`` on ``sys.path`` (``python -m``, uvicorn) reads as the current directory."""
        monkeypatch.setattr(sys, "path", [""])
        monkeypatch.chdir(tmp_path)
        assert _format.short_path(str(tmp_path / "views.py")) == "views.py"

    def test_outside_every_root(self, monkeypatch):
        monkeypatch.setattr(sys, "path", ["/srv/app"])
        monkeypatch.chdir("/srv" if os.path.isdir("/srv") else "/tmp")
        assert _format.short_path("/elsewhere/mod.py") == "/elsewhere/mod.py"

    def test_not_absolute_or_empty(self):
        assert _format.short_path("<frozen importlib._bootstrap>") == (
            "<frozen importlib._bootstrap>"
        )
        assert _format.short_path("") == ""

    def test_non_string_sys_path_entries_are_ignored(self, monkeypatch):
        monkeypatch.setattr(sys, "path", [None, b"/srv", "/srv/app"])
        monkeypatch.chdir("/")
        assert _format.short_path("/srv/app/x.py") == "x.py"

    def test_location(self, monkeypatch):
        monkeypatch.setattr(sys, "path", ["/srv/app"])
        monkeypatch.chdir("/")
        assert _format.location("/srv/app/x.py", 3) == "x.py:3"
        assert _format.location(None, None) is None

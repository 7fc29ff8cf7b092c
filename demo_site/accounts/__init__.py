"""The classic User/Profile example, wired with signals."""

from __future__ import annotations

"""``signaltrace_receivers`` and ``signaltrace_run``."""

from __future__ import annotations

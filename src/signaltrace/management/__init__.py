"""Management commands of the signaltrace app."""

from __future__ import annotations

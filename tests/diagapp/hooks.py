"""Re-exports a signal: the receiver map still names it after signals.py."""

from __future__ import annotations

from .signals import article_published

__all__ = ["article_published"]

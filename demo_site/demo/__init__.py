"""The demo project: settings, URLs, WSGI and ASGI entry points."""

from __future__ import annotations

"""The trace viewer: recent requests, each with its causal tree and waterfall.

Mount it with ``path("__signaltrace__/", include("signaltrace.urls"))``. Every
view answers 404 unless ``SHOW_CALLBACK(request)`` allows, and only to GET.
Templates are rendered by a private template engine (no ``TEMPLATES`` setup
needed); the stylesheet and script are served by the viewer itself (no
``staticfiles`` or CDN needed, so it works offline and under a strict CSP).
"""

from __future__ import annotations

__all__: list[str] = []

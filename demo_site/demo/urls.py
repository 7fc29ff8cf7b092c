"""URLs of the demo site: the accounts app, and signaltrace's trace viewer."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    # The trace viewer: recent requests, each request's tree and waterfall.
    # It answers 404 unless SHOW_CALLBACK allows (DEBUG and INTERNAL_IPS here).
    path("__signaltrace__/", include("signaltrace.urls")),
]

"""URLs of the demo site: everything lives in the accounts app."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.urls")),
    # Once signaltrace's trace viewer ships:
    # path("__signaltrace__/", include("signaltrace.urls")),
]

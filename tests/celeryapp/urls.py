"""The test app's URLs: a view that registers a user, and the trace viewer."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from .signals import user_registered


def register(request: HttpRequest) -> HttpResponse:
    """Register a user inside ``transaction.atomic``: its receivers enqueue the welcome."""
    with transaction.atomic():
        user_registered.send(
            sender="register",
            user_pk=int(request.GET.get("pk", "7")),
            username=request.GET.get("username", "ann"),
            how=request.GET.get("how", "on_commit"),
        )
    return HttpResponse("registered", content_type="text/plain")


urlpatterns = [
    path("register/", register),
    path("__signaltrace__/", include("signaltrace.urls")),
]

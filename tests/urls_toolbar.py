"""URLs and views for the django-debug-toolbar panel tests (``tests/settings_toolbar.py``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from tests.testapp.views import async_signal, error_signal, view_signal

PAGE = "<!DOCTYPE html><html><head><title>page</title></head><body><h1>{}</h1></body></html>"


def show_toolbar(request: HttpRequest) -> bool:
    return True


def page(request: HttpRequest) -> HttpResponse:
    """Two receivers on post_save, one failing send_robust(), one skipping update()."""
    user = User.objects.create(username=request.GET.get("username", "ann"))
    error_signal.send_robust(sender="page")
    User.objects.filter(pk=user.pk).update(first_name="Ann")
    return HttpResponse(PAGE.format("page"))


async def async_page(request: HttpRequest) -> HttpResponse:
    await async_signal.asend(sender="async_page", marker="a")
    return HttpResponse(PAGE.format("async page"))


def quiet(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE.format("quiet"))


def many(request: HttpRequest) -> HttpResponse:
    for i in range(int(request.GET.get("n", "5"))):
        view_signal.send(sender="many", marker=f"m{i}")
    return HttpResponse(PAGE.format("many"))


urlpatterns: list[Any] = [
    path("page/", page),
    path("async-page/", async_page),
    path("quiet/", quiet),
    path("many/", many),
    path("__debug__/", include("debug_toolbar.urls")),
    path("__signaltrace__/", include("signaltrace.urls")),
]

"""Views for the request tests: each sends signals the traces can be checked against."""

from __future__ import annotations

import asyncio
import functools
import io
import threading
import time
from typing import Any

from django.contrib.auth.models import User
from django.dispatch import Signal, receiver
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views import View

#: Sent by the views with the request's marker; its receiver sends ``nested_signal``.
view_signal = Signal()
nested_signal = Signal()
#: Its receiver raises.
error_signal = Signal()
#: One sync and one async receiver.
async_signal = Signal()


@receiver(view_signal)
def announce(sender: Any, marker: str, pause: float = 0, **kwargs: Any) -> str:
    nested_signal.send(sender="announce", marker=marker, pause=pause)
    return marker


@receiver(nested_signal)
def record_marker(sender: Any, marker: str, pause: float = 0, **kwargs: Any) -> str:
    if pause:
        time.sleep(pause)
    return marker


@receiver(error_signal)
def fails(sender: Any, **kwargs: Any) -> None:
    raise ValueError("receiver failed <b>loudly</b>")


@receiver(async_signal)
async def async_record(sender: Any, marker: str, **kwargs: Any) -> str:
    await asyncio.sleep(0.001)
    return marker


@receiver(async_signal)
def sync_record(sender: Any, marker: str, **kwargs: Any) -> str:
    return marker


def signal_view(request: Any, marker: str) -> HttpResponse:
    pause = float(request.GET.get("pause", 0))
    view_signal.send(sender="signal_view", marker=marker, pause=pause)
    return HttpResponse(marker, content_type="text/plain")


async def async_signal_view(request: Any, marker: str) -> HttpResponse:
    await async_signal.asend(sender="async_signal_view", marker=marker)
    return HttpResponse(marker, content_type="text/plain")


#: The threaded live server shares one in-memory SQLite connection between its
#: threads, which cannot run statements concurrently: take turns for the DB work.
_db_turns = threading.Lock()


def create_user_view(request: Any) -> JsonResponse:
    username = request.GET["username"]
    with _db_turns:
        user = User.objects.create(username=username)
    view_signal.send(sender="create_user_view", marker=username)
    return JsonResponse({"pk": user.pk, "username": username})


def robust_view(request: Any) -> HttpResponse:
    error_signal.send_robust(
        sender="robust_view", password="hunter2", api_key="k-123", note="<script>x</script>"
    )
    return HttpResponse("ok", content_type="text/plain")


def raising_view(request: Any) -> HttpResponse:
    error_signal.send(sender="raising_view")
    return HttpResponse("unreachable")  # pragma: no cover


def stream_view(request: Any) -> StreamingHttpResponse:
    def chunks() -> Any:
        for i in range(3):
            view_signal.send(sender="stream_view", marker=f"chunk-{i}")
            yield f"{i}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def broken_stream_view(request: Any) -> StreamingHttpResponse:
    def chunks() -> Any:
        yield "first\n"
        raise RuntimeError("stream broke")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def async_stream_view(request: Any) -> StreamingHttpResponse:
    async def chunks() -> Any:
        for i in range(3):
            await async_signal.asend(sender="async_stream_view", marker=f"achunk-{i}")
            yield f"{i}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def broken_async_stream_view(request: Any) -> StreamingHttpResponse:
    async def chunks() -> Any:
        yield "first\n"
        raise RuntimeError("async stream broke")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def file_view(request: Any) -> FileResponse:
    view_signal.send(sender="file_view", marker="file")
    return FileResponse(io.BytesIO(b"file content"), filename="data.txt")


class ClassView(View):
    def get(self, request: Any) -> HttpResponse:
        view_signal.send(sender="ClassView", marker="class")
        return HttpResponse("class", content_type="text/plain")


#: A view without ``__qualname__``: the trace falls back to the URL's view name.
partial_view = functools.partial(signal_view, marker="partial")

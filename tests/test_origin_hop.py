"""The "Sent from" origin of a dispatch, across asgiref's sync_to_async hop.

A dispatch sent in sync_to_async's worker thread has only asgiref's
``thread_handler`` (and Django) on its own stack. The hook wraps
``SyncToAsync.__call__`` so that, while a capture is open, the origin of the
code that awaited the hop is carried into the thread and becomes the
dispatch's origin: for ``acreate()``, for ``sync_to_async(send_robust)``, and
inside ``async with capture()``.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading

import pytest
from asgiref.sync import SyncToAsync, async_to_sync, iscoroutinefunction, sync_to_async
from django.contrib.auth.models import User
from django.dispatch import Signal

import signaltrace
from signaltrace import _hotpath

pinged = Signal()


def pong(sender, **kwargs):
    return "pong"


def next_line() -> int:
    """The line after the caller's: where the statement to find runs."""
    return sys._getframe(1).f_lineno + 1


@pytest.fixture
def connected():
    pinged.connect(pong)
    yield
    pinged.disconnect(pong)


def only_root(trace):
    (root,) = trace.roots
    return root


@pytest.mark.django_db(transaction=True)
def test_acreate_points_at_the_await():
    """User.objects.acreate() saves in a worker thread; its post_save is sent from the await."""
    where = {}

    async def register():
        where["line"] = next_line()
        return await User.objects.acreate(username="hop")

    with signaltrace.capture() as trace:
        asyncio.run(register())
    post_save = only_root(trace)
    assert post_save.signal_name == "post_save"
    assert post_save.origin is not None
    assert post_save.origin.filename == __file__
    assert post_save.origin.lineno == where["line"]
    assert post_save.origin.function.endswith("register")
    assert f"test_origin_hop.py:{where['line']} in " in trace.render()


@pytest.mark.usefixtures("connected")
def test_sync_to_async_send_robust():
    """An async view that hands send_robust to sync_to_async gets its own line."""
    where = {}

    async def view():
        where["line"] = next_line()
        return await sync_to_async(pinged.send_robust)(sender="view")

    with signaltrace.capture() as trace:
        responses = async_to_sync(view)()
    assert responses == [(pong, "pong")]
    dispatch = only_root(trace)
    assert dispatch.method == "send_robust"
    assert (dispatch.origin.filename, dispatch.origin.lineno) == (__file__, where["line"])
    assert dispatch.origin.function.endswith("view")


@pytest.mark.django_db(transaction=True)
def test_inside_async_with_capture():
    """A capture opened in async code sees the await of asave() as the origin."""
    where = {}

    async def main():
        user = User(username="asave")
        async with signaltrace.capture() as trace:
            where["line"] = next_line()
            await user.asave()
        return trace

    trace = asyncio.run(main())
    post_save = only_root(trace)
    assert (post_save.origin.filename, post_save.origin.lineno) == (__file__, where["line"])
    assert post_save.origin.function.endswith("main")
    assert trace.to_dict()["dispatches"][0]["origin"]["lineno"] == where["line"]


@pytest.mark.usefixtures("connected")
def test_first_frame_in_the_thread_still_wins():
    """Code of the project's own inside the thread is the origin, not the await."""
    where = {}

    def sends():
        where["line"] = next_line()
        pinged.send(sender="in-thread")

    async def view():
        await sync_to_async(sends)()

    with signaltrace.capture() as trace:
        async_to_sync(view)()
    origin = only_root(trace).origin
    assert (origin.lineno, origin.function) == (where["line"], sends.__qualname__)


@pytest.mark.usefixtures("connected")
def test_nested_hops_carry_the_first_caller():
    """sync_to_async of async_to_sync of sync_to_async(send): the view's await, three hops up."""
    where = {}
    hops = sync_to_async(async_to_sync(sync_to_async(pinged.send)), thread_sensitive=False)

    async def view():
        where["line"] = next_line()
        return await hops(sender="deep")

    with signaltrace.capture() as trace:
        assert async_to_sync(view)() == [(pong, "pong")]
    origin = only_root(trace).origin
    assert (origin.lineno, origin.function) == (where["line"], view.__qualname__)


@pytest.mark.usefixtures("connected")
def test_value_does_not_leak_out_of_the_hop():
    """After the hop, the awaiting code's context no longer holds the carried origin."""

    async def view():
        await sync_to_async(pinged.send)(sender="x")
        return _hotpath.HOP_ORIGIN.get()

    with signaltrace.capture():
        assert async_to_sync(view)() is None
    assert _hotpath.HOP_ORIGIN.get() is None


@pytest.mark.usefixtures("connected")
def test_idle_calls_the_original_directly():
    """With no capture open, the wrapper adds no coroutine and finds no origin."""
    calls = []
    real = _hotpath.find_origin

    def spy(frame):
        calls.append(frame)
        return real(frame)

    async def view():
        coro = sync_to_async(pinged.send)(sender="idle")
        kind = coro.cr_code.co_name
        return kind, await coro

    _hotpath.find_origin = spy
    try:
        kind, responses = asyncio.run(view())
    finally:
        _hotpath.find_origin = real
    assert kind == "__call__"  # asgiref's own coroutine, not signaltrace's _hop
    assert responses == [(pong, "pong")]
    assert calls == []


def test_install_and_uninstall_restore_exactly():
    original = SyncToAsync.__dict__["__call__"]
    assert original.__module__ == "signaltrace._hotpath"
    # Still a coroutine function, for asgiref's (and Django's) checks.
    assert iscoroutinefunction(SyncToAsync.__call__)
    assert iscoroutinefunction(sync_to_async(pong))
    assert inspect.signature(SyncToAsync.__call__) == inspect.signature(original.__wrapped__)
    signaltrace.uninstall()
    try:
        restored = SyncToAsync.__dict__["__call__"]
        assert restored is original.__wrapped__
        assert restored.__module__ == "asgiref.sync"
    finally:
        signaltrace.install()
    assert SyncToAsync.__dict__["__call__"].__wrapped__ is restored
    signaltrace.install()  # idempotent: not wrapped twice
    assert SyncToAsync.__dict__["__call__"].__wrapped__ is restored


@pytest.mark.usefixtures("connected")
def test_hop_in_a_plain_thread_has_no_origin():
    """A dispatch in a thread that no awaiting code started still has no origin."""
    with signaltrace.capture(all_threads=True) as trace:
        thread = threading.Thread(target=pinged.send, kwargs={"sender": None})
        thread.start()
        thread.join()
    assert only_root(trace).origin is None

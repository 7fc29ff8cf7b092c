"""The trace viewer in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The async API is used (no greenlets: coverage follows it as plain asyncio).
Playwright's own browser downloads are not used: the system Chromium is
launched through ``executable_path``. A missing browser (or Playwright) is a
failure, not a skip: CI installs both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from signaltrace.sinks import memory
from signaltrace.sinks.memory import buffer

CHROMIUM = os.environ.get("SIGNALTRACE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium():
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:  # pragma: no cover - CI installs it; a missing browser fails, never skips
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return path


@pytest.fixture(autouse=True)
def _tracing(settings):
    settings.DEBUG = True
    settings.SIGNALTRACE = {"ENABLED": True, "LOG_LEVEL": None}
    buffer().clear()
    yield
    memory._buffer.clear()


@contextlib.asynccontextmanager
async def open_page(
    chromium: str, tmp_path: Path, errors: list[str], *, console: bool = True
) -> AsyncIterator[Any]:
    """A page of Debian's chromium in a fresh profile under ``tmp_path``.

    The page's uncaught errors, and with ``console`` its console errors, are
    appended to ``errors``; the browser is closed on the way out.
    """
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            if console:
                page.on(
                    "console",
                    lambda message: (
                        errors.append(message.text) if message.type == "error" else None
                    ),
                )
            yield page
        finally:
            await context.close()


def get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers.get("X-Signaltrace-Id"), response.read()


async def browse(base, user_trace, chromium, tmp_path):
    """The browser part, on Playwright's async API."""
    errors: list[str] = []
    async with open_page(chromium, tmp_path, errors) as page:
        await page.goto(f"{base}/__signaltrace__/")
        rows = page.locator("#st-rows tr.st-request")
        await expect(rows).to_have_count(3)
        await expect(page.locator("#st-rows tr.st-has-error")).to_have_count(1)
        await page.screenshot(path=str(tmp_path / "list.png"), full_page=True)

        # Filters: requests with errors only, then back.
        await page.check("input[name=errors]")  # submits the form on change
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("/robust/")
        await page.goto(f"{base}/__signaltrace__/")

        # Into the user-creating request.
        await page.locator(f'a.st-path[href="{user_trace}/"]').click()
        await expect(page).to_have_url(f"{base}/__signaltrace__/{user_trace}/")
        tree = page.get_by_role("tree")
        items = tree.locator('[role="treeitem"]')  # hidden ones too
        await expect(items).to_have_count(7)

        # The waterfall: every bar is laid out proportionally, inside the lane.
        bars = page.locator(".st-tree .st-bar")
        await expect(bars).to_have_count(7)
        lane = await page.locator(".st-tree .st-col-lane").first.bounding_box()
        for index in range(7):
            box = await bars.nth(index).bounding_box()
            assert box is not None
            assert box["width"] >= 1
            assert lane["x"] - 1 <= box["x"] <= lane["x"] + lane["width"] + 1
        post_save, create_profile = (
            await bars.nth(0).bounding_box(),
            await bars.nth(1).bounding_box(),
        )
        assert post_save["x"] <= create_profile["x"] + 1
        assert (
            create_profile["x"] + create_profile["width"] <= post_save["x"] + post_save["width"] + 1
        )

        # The time axis zooms to the signals and back; bars stay nested.
        zoom = page.locator("[data-zoom]")
        pressed = await zoom.get_attribute("aria-pressed")
        await zoom.click()
        await expect(zoom).not_to_have_attribute("aria-pressed", pressed)
        zoomed = await bars.nth(0).bounding_box()
        assert zoomed["width"] != post_save["width"]
        await zoom.click()
        await expect(zoom).to_have_attribute("aria-pressed", pressed)

        # Collapse post_save with the mouse, expand it again with the keyboard.
        first = items.nth(0)
        await expect(first).to_have_attribute("aria-expanded", "true")
        await first.locator(".st-twisty").click()
        await expect(first).to_have_attribute("aria-expanded", "false")
        await expect(items.nth(1)).to_be_hidden()
        await expect(first).to_be_focused()
        await page.keyboard.press("ArrowRight")
        await expect(first).to_have_attribute("aria-expanded", "true")
        await expect(items.nth(1)).to_be_visible()

        # Down to create_user_profile: its details are shown.
        await page.keyboard.press("ArrowDown")
        receiver = items.nth(1)
        await expect(receiver).to_have_attribute("aria-selected", "true")
        details = page.locator(f'.st-detail[data-for="{await receiver.get_attribute("id")}"]')
        await expect(details).to_be_visible()
        await expect(details).to_contain_text("tests.testapp.signals.create_user_profile")
        await expect(details).to_contain_text("tests/testapp/signals.py:")
        await expect(details).to_contain_text("returned")
        await expect(details.locator(".st-kwargs")).to_contain_text("created")
        await expect(page.locator(".st-detail:visible")).to_have_count(1)

        # Left goes to the parent; Left again collapses; Enter toggles back open.
        await page.keyboard.press("ArrowLeft")
        await expect(first).to_be_focused()
        await page.keyboard.press("ArrowLeft")
        await expect(first).to_have_attribute("aria-expanded", "false")
        await page.keyboard.press("Enter")
        await expect(first).to_have_attribute("aria-expanded", "true")
        await page.keyboard.press("End")
        await expect(items.nth(6)).to_be_focused()
        await page.keyboard.press("Home")
        await expect(first).to_be_focused()

        # Collapse all / expand all buttons.
        await page.get_by_role("button", name="Collapse all").click()
        await expect(tree.locator('[role="treeitem"]:visible')).to_have_count(2)
        await page.get_by_role("button", name="Expand all").click()
        await expect(tree.locator('[role="treeitem"]:visible')).to_have_count(7)

        # Select the nested receiver with the mouse for the screenshot.
        await items.nth(4).click()
        await expect(items.nth(4)).to_have_attribute("aria-selected", "true")
        await page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)

        # The error request: the failing receiver is selected on arrival.
        await page.goto(f"{base}/__signaltrace__/")
        await page.locator("#st-rows tr.st-has-error td.st-time").click()  # the whole row links
        failing = page.locator('[role="treeitem"][aria-selected="true"]')
        await expect(failing).to_contain_text("fails")
        current = page.locator(".st-detail:visible")
        await expect(current.locator(".st-exc")).to_contain_text("ValueError")
        await expect(current.locator(".st-exc")).to_contain_text("Swallowed by send_robust")
        await expect(current.locator(".st-redacted")).to_have_count(2)
        await page.screenshot(path=str(tmp_path / "error.png"), full_page=True)

        # Auto-refresh picks up new requests without a reload.
        await page.goto(f"{base}/__signaltrace__/")
        await page.check("#st-refresh")
        await expect(page.locator("#st-rows tr.st-request")).to_have_count(3)
        await asyncio.to_thread(get, f"{base}/signal/later/")
        await expect(page.locator("#st-rows tr.st-request")).to_have_count(4, timeout=10_000)
        await expect(page.locator("#st-rows")).to_contain_text("/signal/later/")
        await page.uncheck("#st-refresh")
    return errors


@pytest.mark.django_db(transaction=True)
def test_viewer_in_chromium(live_server, chromium, tmp_path):
    """List, click into a request, collapse and expand with mouse and keyboard, inspect."""
    # Some requests to look at. The browser part runs in an event loop, where
    # Django would refuse DB access: the live server thread does all of it.
    user_trace, _body = get(f"{live_server.url}/create-user/?username=browser")
    get(f"{live_server.url}/robust/")
    get(f"{live_server.url}/signal/plain/")
    errors = asyncio.run(browse(live_server.url, user_trace, chromium, tmp_path))
    assert errors == []
    for name in ("list.png", "detail.png", "error.png"):
        assert Path(tmp_path / name).stat().st_size > 10_000


def shots_dir(tmp_path):
    """Where the screenshots go: ``$SIGNALTRACE_SHOTS`` (to look at them), else ``tmp_path``."""
    path = Path(os.environ.get("SIGNALTRACE_SHOTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep(trace, path, method="GET", status=200):
    """A captured trace, kept for the viewer as if it were a request."""
    trace.meta.update(id=trace.trace_id, method=method, path=path, status=status, view="v")
    buffer().emit(trace)
    return trace.trace_id


async def browse_noise(base, ids, chromium, tmp_path, shots):
    """Skipped badge and filter, hidden quiet requests, hidden tools, truncated banner."""
    errors: list[str] = []
    async with open_page(chromium, tmp_path, errors) as page:
        await page.goto(f"{base}/__signaltrace__/")
        rows = page.locator("#st-rows tr.st-request")
        # The request that sent no signal is left out, and counted.
        await expect(rows).to_have_count(3)
        await expect(page.locator("#st-hidden")).to_contain_text("1 request without signals hidden")
        await expect(page.locator("#st-rows")).not_to_contain_text("/quiet/")
        # The bulk import: 0 / 0, but a badge says it skipped receivers.
        bulk = page.locator(f'#st-rows tr[data-href="{ids["bulk"]}/"]')
        await expect(bulk).to_contain_text("0 / 0")
        badge = bulk.locator(".st-b-skipped")
        await expect(badge).to_be_visible()
        await expect(badge).to_contain_text("skipped")
        assert "bulk_create on auth.User skipped post_save" in await badge.get_attribute("title")
        # The capped trace: a truncated badge; every row says its kind.
        capped = page.locator(f'#st-rows tr[data-href="{ids["capped"]}/"]')
        await expect(capped.locator(".st-b-truncated")).to_have_text("truncated")
        await expect(page.locator("#st-rows .st-trace-kind")).to_have_count(3)
        await page.screenshot(path=str(shots / "list-badges.png"), full_page=True)

        # Has skipped: the bulk import alone.
        await page.get_by_label("Has skipped").check()  # submits the form on change
        await expect(page).to_have_url(re.compile(r".*[?&]skipped=1(&|$)"))
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("/bulk-import/")
        await page.screenshot(path=str(shots / "list-has-skipped.png"), full_page=True)

        # Show requests without signals: the quiet one comes back.
        await page.goto(f"{base}/__signaltrace__/")
        await page.get_by_label("Show requests without signals").check()
        await expect(rows).to_have_count(4)
        await expect(page.locator("#st-rows")).to_contain_text("/quiet/")
        await expect(page.locator("#st-hidden")).to_be_hidden()  # empty: nothing hidden
        await page.screenshot(path=str(shots / "list-all.png"), full_page=True)

        # Nothing to expand: no Expand all / Collapse all / Zoom.
        await page.locator(f'a.st-path[href="{ids["bulk"]}/"]').click()
        await expect(page).to_have_url(f"{base}/__signaltrace__/{ids['bulk']}/")
        for name in ("Expand all", "Collapse all", "Zoom to signals"):
            await expect(page.get_by_role("button", name=name)).to_have_count(0)
        skipped = page.locator(".st-skipped")
        await expect(skipped).to_contain_text("Receivers that did not run")
        await expect(skipped).to_contain_text("tests/test_browser.py:")
        await page.screenshot(path=str(shots / "detail-skipped.png"), full_page=True)
        await page.goto(f"{base}/__signaltrace__/{ids['quiet']}/")
        await expect(page.locator(".st-tools")).to_have_count(0)
        await expect(page.locator(".st-empty-trace")).to_be_visible()

        # A tree keeps its tools.
        await page.goto(f"{base}/__signaltrace__/{ids['user']}/")
        await expect(page.get_by_role("button", name="Expand all")).to_be_visible()
        await expect(page.get_by_role("button", name="Zoom to signals")).to_be_visible()

        # The truncated trace opens with its banner.
        await page.goto(f"{base}/__signaltrace__/{ids['capped']}/")
        banner = page.locator("#st-truncated")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Truncated trace: MAX_EVENTS reached after")
        await expect(banner).to_contain_text("events in all, past MAX_EVENTS (3)")
        await page.screenshot(path=str(shots / "detail-truncated.png"), full_page=True)
    return errors


@pytest.mark.django_db(transaction=True)
def test_viewer_noise_and_truncation_in_chromium(live_server, chromium, tmp_path):
    """The list marks skipped and truncated traces, filters them, hides the quiet ones."""
    from django.contrib.auth.models import User

    import signaltrace
    from tests.testapp.views import view_signal

    ids = {}
    ids["user"], _body = get(f"{live_server.url}/create-user/?username=noise")
    with signaltrace.capture(label="GET /quiet/ 200") as quiet:
        pass  # a request that sent no signal
    ids["quiet"] = keep(quiet, "/quiet/")
    with signaltrace.capture(label="POST /bulk-import/ 302") as bulk:
        User.objects.bulk_create([User(username="noise-a"), User(username="noise-b")])
    ids["bulk"] = keep(bulk, "/bulk-import/", method="POST", status=302)
    with signaltrace.capture(label="GET /capped/ 200", max_events=3) as capped:
        for _ in range(3):
            view_signal.send(sender="capped", marker="capped")
    assert capped.truncated
    ids["capped"] = keep(capped, "/capped/")
    shots = shots_dir(tmp_path)
    errors = asyncio.run(browse_noise(live_server.url, ids, chromium, tmp_path, shots))
    assert errors == []
    for name in (
        "list-badges.png",
        "list-has-skipped.png",
        "list-all.png",
        "detail-skipped.png",
        "detail-truncated.png",
    ):
        assert (shots / name).stat().st_size > 10_000

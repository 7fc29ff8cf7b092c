"""``manage.py demo_tour``: drive the demo pages and print what each request triggered.

Uses Django's test clients (no server needed). ``SignalTraceMiddleware``
records every request, exactly as under ``runserver``; after each request the
command takes the trace id from the response's ``X-Signaltrace-Id`` header,
reads the finished trace from the ring buffer the viewer reads
(``demo.tracing.find_trace``) and prints its tree. Then it checks that the
home page and the viewer show it, and what the viewer's list does with a
skipped operation, a truncated capture and requests that sent no signal.
Usernames get a fresh suffix per run, so the tour can run any number of
times against one database.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from typing import Any

from asgiref.sync import async_to_sync
from demo.tracing import find_trace, trace_url
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.http import HttpResponseBase
from django.test import AsyncClient, Client

from accounts.models import BackupRecord, Profile
from accounts.views import LAST_ACTION, WELCOME_ALL_MAX_EVENTS

MIDDLEWARE = "signaltrace.middleware.SignalTraceMiddleware"
VIEWER = "http://127.0.0.1:8000/__signaltrace__/"


class Command(BaseCommand):
    help = "Walk through the demo pages with the test client and print each request's signal trace."

    def handle(self, *args: Any, **options: Any) -> None:
        if MIDDLEWARE not in settings.MIDDLEWARE:
            raise CommandError(f"{MIDDLEWARE} is not in MIDDLEWARE: no request is traced.")
        run = secrets.token_hex(2)
        ann, bob = f"ann-{run}", f"bob-{run}"
        self.client = Client(raise_request_exception=True)
        self.async_client = AsyncClient(raise_request_exception=True)
        self.stdout.write(
            "signaltrace demo tour. SignalTraceMiddleware records every request below; each\n"
            "tree shows the signals the request sent and every receiver they called. The\n"
            "one-line 'signaltrace.request' events are structlog's output on stderr.\n\n"
        )

        self.request(
            "post",
            "/register/",
            {"username": ann, "email": f"{ann}@example.com"},
            "Register a user. The view only calls create_user(); post_save does the rest.",
        )
        ann_pk = User.objects.get(username=ann).pk

        self.request(
            "post",
            f"/users/{ann_pk}/edit/",
            {"email": f"{ann}@example.org", "bio": "Likes tracing signals."},
            "Edit the profile: user.profile.bio = ...; user.save(). save_user_profile saves the Profile.",
        )
        bulk = self.request(
            "post",
            "/bulk-import/",
            {"count": 3},
            "Bulk import 3 users with bulk_create(): no post_save, so no Profile.",
        )
        self.request(
            "post",
            f"/users/{ann_pk}/welcome/",
            {},
            "Send the custom user_welcomed signal with send_robust(): one receiver raises.",
        )
        self.request(
            "post",
            "/welcome-all/",
            {},
            "Welcome several users, the loop also recorded by "
            f"capture(max_events={WELCOME_ALL_MAX_EVENTS}): too small, so it is truncated.",
        )
        capture = self.client.session.get(LAST_ACTION, {}).get("capture")
        self.request(
            "post",
            "/async-register/",
            {"username": bob, "email": f"{bob}@example.com"},
            "Register from an async view with await User.objects.acreate(), "
            "through the ASGI handler (the middleware runs in async mode).",
            asynchronous=True,
        )
        last = self.request(
            "post",
            f"/users/{ann_pk}/delete/",
            {},
            "Delete the first user: pre_delete backs its data up first.",
        )
        self.pages(last)
        self.viewer_list(bulk, capture)

        without = User.objects.filter(profile__isnull=True).count()
        self.stdout.write(
            self.style.MIGRATE_HEADING("Afterwards")
            + f"\n  users: {User.objects.count()}, profiles: {Profile.objects.count()}, "
            f"users without a Profile: {without}, backups: {BackupRecord.objects.count()}\n\n"
        )
        self.stdout.write(
            self.style.SUCCESS("Tour finished.")
            + " These traces lived in this process's ring buffer. The dev server\n"
            "(`python manage.py runserver 127.0.0.1:8000`, which `make demo` starts next) keeps\n"
            "its own: open http://127.0.0.1:8000/, click around, and watch each request arrive\n"
            f"in the trace viewer at {VIEWER}"
        )

    def request(
        self,
        method: str,
        path: str,
        data: dict[str, Any],
        explain: str,
        *,
        asynchronous: bool = False,
        expect: int = 302,
    ) -> str:
        """Make one request, print its trace and notes; return the trace id."""
        label = f"{method.upper()} {path}"
        self.stdout.write(self.style.MIGRATE_HEADING(label) + f"  {explain}")
        self.stdout.flush()  # keep the order with the log lines on stderr
        if asynchronous:
            client: Client | AsyncClient = self.async_client
            response = async_to_sync(getattr(self.async_client, method))(path, data)
        else:
            client = self.client
            response = getattr(self.client, method)(path, data)
        self.expect(label, response, expect)
        trace_id = response.headers.get("X-Signaltrace-Id")
        trace = find_trace(trace_id) if trace_id else None
        if trace_id is None or trace is None:
            raise CommandError(
                f"{label}: no trace (X-Signaltrace-Id: {trace_id}). Is DEBUG on, "
                "127.0.0.1 in INTERNAL_IPS, and SIGNALTRACE['BUFFER_SIZE'] above 0?"
            )
        self.stdout.write(textwrap.indent(trace.render(), "  "))
        if asynchronous:
            self.stdout.write(
                f"  trace.meta: async={trace.meta['async']} view={trace.meta['view']} "
                "(the middleware ran in async mode)"
            )
        last = client.session.get(LAST_ACTION) or {}
        for number, note in enumerate(last.get("notes", ())):
            self.stdout.write(
                textwrap.fill(note, 96, initial_indent="  * ", subsequent_indent="    ")
            )
            for result in last.get("results", ()) if number == 0 else ():
                self.stdout.write(
                    textwrap.fill(
                        f"{result['receiver']} {result['outcome']}",
                        96,
                        initial_indent="      - ",
                        subsequent_indent="        ",
                    )
                )
        captured = find_trace(last["capture"]) if last.get("capture") else None
        if captured is not None:
            self.stdout.write("  The view's own capture, kept for the viewer (kind 'capture'):")
            self.stdout.write(textwrap.indent(captured.render(), "    "))
        self.stdout.write("")
        self.stdout.flush()
        return trace_id

    def pages(self, trace_id: str) -> None:
        """Check that the home page and the trace viewer show the last request's trace."""
        detail = trace_url(trace_id)
        self.stdout.write(self.style.MIGRATE_HEADING("The pages that show traces"))
        home = self.client.get("/")
        self.expect("GET /", home, 200)
        if detail not in home.content.decode():
            raise CommandError(f"GET /: the page does not link to {detail}")
        self.stdout.write(f"  GET / {home.status_code}: shows that tree and links to {detail}")
        for url, what in (
            ("/__signaltrace__/", "the viewer's list of recent requests"),
            (detail, "the viewer's page for that request: tree, waterfall, receivers"),
            (detail.rstrip("/") + ".json", "the same trace as JSON"),
        ):
            response = self.client.get(url)
            self.expect(f"GET {url}", response, 200)
            self.stdout.write(f"  GET {url} {response.status_code}: {what}")
        data = json.loads(self.client.get(detail.rstrip("/") + ".json").content)
        self.stdout.write(
            f"  ({data['schema']}: dispatch_count={data['dispatch_count']}, "
            f"call_count={data['call_count']}; the viewer's own requests are not traced)"
        )
        self.stdout.write("")
        self.stdout.flush()

    def viewer_list(self, bulk: str, capture: str | None) -> None:
        """What the viewer's list page makes of skipped operations, truncation and noise."""
        self.stdout.write(self.style.MIGRATE_HEADING("The viewer's list of recent requests"))
        listing = "/__signaltrace__/"
        page = self.get(listing)
        row = page.split(f'data-href="{bulk}/"', 1)[-1].split("</tr>", 1)[0]
        if "1 skipped</span>" not in row:
            raise CommandError(f"GET {listing}: the bulk import has no 'skipped' badge")
        self.stdout.write(
            f"  GET {listing}: the bulk import (0 dispatches, 0 calls) has a '1 skipped' badge"
        )
        only = self.get(f"{listing}?skipped=1")
        if f'href="{bulk}/"' not in only or only.count('class="st-path"') != 1:
            raise CommandError(f"GET {listing}?skipped=1: expected the bulk import alone")
        self.stdout.write(f"  GET {listing}?skipped=1 ('Has skipped'): the bulk import only")
        if capture is not None:
            row = page.split(f'data-href="{capture}/"', 1)[-1].split("</tr>", 1)[0]
            if "truncated</span>" not in row:
                raise CommandError(f"GET {listing}: the capped capture has no 'truncated' badge")
            if 'id="st-truncated"' not in self.get(trace_url(capture)):
                raise CommandError(f"GET {trace_url(capture)}: no 'Truncated trace' banner")
            self.stdout.write(
                f"  GET {listing}: welcome_all's capture is listed as kind 'capture', with a "
                "'truncated' badge;\n    its page opens with the 'Truncated trace' banner"
            )
        hidden = page.split('id="st-hidden">', 1)[-1].split("</p>", 1)[0]
        if "without signals hidden" not in hidden:
            raise CommandError(f"GET {listing}: no note about the requests it hides")
        note = hidden.split(" · ", 1)[0]
        self.stdout.write(f"  GET {listing}: '{note}' (GET / sends none); ?all=1 lists them too")
        self.stdout.write("")
        self.stdout.flush()

    def get(self, url: str) -> str:
        response = self.client.get(url)
        self.expect(f"GET {url}", response, 200)
        return str(response.content.decode())

    def expect(self, label: str, response: HttpResponseBase, status: int) -> None:
        if response.status_code != status:
            body = getattr(response, "content", b"").decode(errors="replace")[:2000]
            raise CommandError(
                f"{label}: expected status {status}, got {response.status_code}.\n{body}"
            )

"""``manage.py demo_tour``: drive the demo pages and print what each request triggered.

Uses Django's test client (no server needed), wraps each request in
``signaltrace.capture()`` and prints the trace tree. Usernames get a fresh
suffix per run, so the tour can run any number of times against one database.
"""

from __future__ import annotations

import secrets
import textwrap
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

import signaltrace
from accounts.models import BackupRecord, Profile
from accounts.views import LAST_ACTION


class Command(BaseCommand):
    help = "Walk through the demo pages with the test client and print each request's signal trace."

    def handle(self, *args: Any, **options: Any) -> None:
        run = secrets.token_hex(2)
        ann, bob = f"ann-{run}", f"bob-{run}"
        self.client = Client(raise_request_exception=True)
        self.stdout.write(
            "signaltrace demo tour: each request below ran inside signaltrace.capture();\n"
            "the tree shows every signal dispatched and every receiver it called.\n"
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
        self.request(
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
            "/async-register/",
            {"username": bob, "email": f"{bob}@example.com"},
            "Register from an async view with await User.objects.acreate().",
        )
        self.request(
            "post",
            f"/users/{ann_pk}/delete/",
            {},
            "Delete the first user: pre_delete backs its data up first.",
        )

        without = User.objects.filter(profile__isnull=True).count()
        self.stdout.write(
            self.style.MIGRATE_HEADING("Afterwards")
            + f"\n  users: {User.objects.count()}, profiles: {Profile.objects.count()}, "
            f"users without a Profile: {without}, backups: {BackupRecord.objects.count()}\n"
        )
        self.stdout.write(
            self.style.SUCCESS("Tour finished.")
            + " Run `python manage.py runserver 127.0.0.1:8000` and open http://127.0.0.1:8000/"
        )

    def request(
        self, method: str, path: str, data: dict[str, Any], explain: str, expect: int = 302
    ) -> None:
        label = f"{method.upper()} {path}"
        with signaltrace.capture(label=label) as trace:
            response = getattr(self.client, method)(path, data)
        status = response.status_code
        heading = f"{label} {status}"
        self.stdout.write(self.style.MIGRATE_HEADING(heading) + f"  {explain}")
        self.stdout.write(textwrap.indent(trace.render(), "  "))
        last = self.client.session.get(LAST_ACTION)
        for note in last["notes"] if last else ():
            self.stdout.write(
                textwrap.fill(note, 96, initial_indent="  * ", subsequent_indent="    ")
            )
        self.stdout.write("")
        self.stdout.flush()  # keep order with log lines on stderr when piped
        if status != expect:
            body = response.content.decode(errors="replace")[:2000]
            raise CommandError(f"{heading}: expected status {expect}.\n{body}")

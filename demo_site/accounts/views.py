"""Views of the demo. Each action runs inside ``signaltrace.capture()``.

Until signaltrace's middleware and trace viewer exist, this is how the demo
shows traces: the action records its own work, stores the rendered tree in the
session, redirects (POST/redirect/GET) and the home page shows it once.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

import signaltrace

from .forms import BulkImportForm, ProfileForm, RegisterForm
from .models import BackupRecord, Profile
from .signals import user_welcomed

#: Session key of the last action's trace, shown once by the home page.
LAST_ACTION = "signaltrace_demo_last_action"


def _label(request: HttpRequest) -> str:
    return f"{request.method} {request.path}"


def _last_action(trace: signaltrace.Trace, notes: list[str]) -> dict[str, Any]:
    return {"label": trace.label, "tree": trace.render(), "notes": notes}


def _qualname(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"


@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    users = User.objects.select_related("profile").order_by("-pk")
    rows = [{"user": user, "profile": getattr(user, "profile", None)} for user in users]
    return render(
        request,
        "accounts/home.html",
        {
            "last_action": request.session.pop(LAST_ACTION, None),
            "rows": rows,
            "without_profile": sum(1 for row in rows if row["profile"] is None),
            "backups": BackupRecord.objects.all()[:10],
        },
    )


@require_http_methods(["GET", "POST"])
def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        if User.objects.filter(username=username).exists():
            form.add_error("username", "That username is taken.")
        else:
            with signaltrace.capture(label=_label(request)) as trace:
                user = User.objects.create_user(username, form.cleaned_data["email"])
            request.session[LAST_ACTION] = _last_action(
                trace,
                [
                    f"Created user {user.username} (pk={user.pk}) with User.objects.create_user().",
                    "The view never mentions Profile: post_save ran create_user_profile "
                    "(which created it) and then save_user_profile (which saved it again).",
                ],
            )
            return redirect("home")
    return render(request, "accounts/register.html", {"form": form})


@require_http_methods(["GET", "POST"])
async def async_register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        if await User.objects.filter(username=username).aexists():
            form.add_error("username", "That username is taken.")
        else:
            async with signaltrace.capture(label=_label(request)) as trace:
                user = await User.objects.acreate(
                    username=username,
                    email=form.cleaned_data["email"],
                    password=make_password(None),
                )
            await request.session.aset(
                LAST_ACTION,
                _last_action(
                    trace,
                    [
                        f"Created user {user.username} (pk={user.pk}) with "
                        "await User.objects.acreate() in an async view.",
                        "acreate() runs save() in a worker thread (sync_to_async), and "
                        "post_save is sent synchronously there: the same receivers ran, "
                        "and the trace followed the work across the thread hop.",
                    ],
                ),
            )
            return redirect("home")
    return render(request, "accounts/async_register.html", {"form": form})


@require_http_methods(["GET", "POST"])
def bulk_import(request: HttpRequest) -> HttpResponse:
    form = BulkImportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        batch = secrets.token_hex(3)
        new_users = [
            User(username=f"imported-{batch}-{i}", password=make_password(None))
            for i in range(1, form.cleaned_data["count"] + 1)
        ]
        with signaltrace.capture(label=_label(request)) as trace:
            created = User.objects.bulk_create(new_users)
        profiles = Profile.objects.filter(user__in=created).count()
        request.session[LAST_ACTION] = _last_action(
            trace,
            [
                f"Created {len(created)} users with User.objects.bulk_create(); "
                f"{profiles} of them have a Profile.",
                "bulk_create() never calls save(), so pre_save/post_save are not sent "
                "and create_user_profile did not run: no post_save in the trace at all.",
                "Editing one of these users creates the missing Profile (see the edit page).",
            ],
        )
        return redirect("home")
    return render(request, "accounts/bulk_import.html", {"form": form})


@require_http_methods(["GET", "POST"])
def edit_profile(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User.objects.select_related("profile"), pk=pk)
    profile = getattr(user, "profile", None)
    initial = {"email": user.email, "bio": profile.bio if profile else ""}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        notes = [
            f"Edited user {user.username}: the view set user.profile.bio and called "
            "user.save() only; save_user_profile (post_save) saved the profile."
        ]
        with signaltrace.capture(label=_label(request)) as trace:
            if profile is None:
                # A bulk-imported user has no Profile, and save_user_profile
                # would raise RelatedObjectDoesNotExist. Hand it a new, unsaved
                # one: its save() then creates the row.
                user.profile = Profile(user=user)
                notes.append(
                    "This user had no Profile (bulk_create skipped post_save); "
                    "save_user_profile created it now."
                )
            user.email = form.cleaned_data["email"]
            user.profile.bio = form.cleaned_data["bio"]
            user.save()
        request.session[LAST_ACTION] = _last_action(trace, notes)
        return redirect("home")
    return render(
        request,
        "accounts/edit_profile.html",
        {"form": form, "subject": user, "profile": profile},
    )


@require_POST
def welcome(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    with signaltrace.capture(label=_label(request)) as trace:
        responses = user_welcomed.send_robust(sender=User, user=user)
    notes = [f"user_welcomed.send_robust(sender=User, user={user.username!r}) returned:"]
    for receiver, response in responses:
        if isinstance(response, Exception):
            notes.append(
                f"{_qualname(receiver)}: raised {type(response).__name__}: {response} "
                "(swallowed: send_robust returned the exception, the request succeeded; "
                "only a log line on the django.dispatch logger tells you)"
            )
        else:
            notes.append(f"{_qualname(receiver)}: returned {response!r}")
    request.session[LAST_ACTION] = _last_action(trace, notes)
    return redirect("home")


@require_http_methods(["GET", "POST"])
def delete_user(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    if request.method == "POST":
        username = user.username
        with signaltrace.capture(label=_label(request)) as trace:
            user.delete()
        backup = BackupRecord.objects.filter(username=username).first()
        notes = [f"Deleted user {username} with user.delete()."]
        if backup is not None:
            notes.append(
                f"backup_user_data (pre_delete) wrote BackupRecord #{backup.pk} "
                "before the user and its Profile were deleted."
            )
        request.session[LAST_ACTION] = _last_action(trace, notes)
        return redirect("home")
    return render(request, "accounts/delete_user.html", {"subject": user})

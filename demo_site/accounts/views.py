"""Views of the demo. None of them mentions signaltrace's capture().

``SignalTraceMiddleware`` records every request. Each action remembers the id
of its own request's trace (and a few notes) in the session and redirects
home (POST/redirect/GET); the home page then reads that finished trace from
the ring buffer the viewer also reads, shows its tree, and links to it.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from demo.tracing import current_trace_id, trace_url
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from signaltrace import SkippedDispatch
from signaltrace.middleware import shown
from signaltrace.sinks.memory import buffer

from .forms import BulkImportForm, ProfileForm, RegisterForm
from .models import BackupRecord, Profile
from .signals import user_welcomed

#: Session key of the last action (label, trace id, notes), shown once by the home page.
LAST_ACTION = "signaltrace_demo_last_action"


def _action(request: HttpRequest, notes: list[str]) -> dict[str, Any]:
    """What the home page needs to show this request's trace after the redirect."""
    return {
        "label": f"{request.method} {request.path}",
        "trace_id": current_trace_id(),
        "notes": notes,
    }


def _qualname(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"


def _where(item: SkippedDispatch) -> str:
    """The call site of a skipped dispatch, relative to the demo site."""
    origin = item.origin
    if origin is None:
        return ""
    path = Path(origin.filename)
    if path.is_relative_to(settings.BASE_DIR):
        path = path.relative_to(settings.BASE_DIR)
    return f"{path}:{origin.lineno} in {origin.function}"


def _shown_action(request: HttpRequest, action: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last action, with its finished trace from the ring buffer (if allowed)."""
    if action is None or not shown(request):
        return action
    trace = buffer().get(action["trace_id"]) if action.get("trace_id") else None
    if trace is None:  # not recorded, or dropped from the buffer since
        return action
    return {
        **action,
        "tree": trace.render(),
        "url": trace_url(action["trace_id"]),
        "errors": len(trace.errors),
        "skipped": [
            {
                "operation": item.operation,
                "model": item.model,
                "rows": item.rows,
                "signals": ", ".join(item.signals),
                "receivers": item.receivers,
                "where": _where(item),
            }
            for item in trace.skipped
        ],
    }


@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    users = User.objects.select_related("profile").order_by("-pk")
    rows = [{"user": user, "profile": getattr(user, "profile", None)} for user in users]
    return render(
        request,
        "accounts/home.html",
        {
            "last_action": _shown_action(request, request.session.pop(LAST_ACTION, None)),
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
            user = User.objects.create_user(username, form.cleaned_data["email"])
            request.session[LAST_ACTION] = _action(
                request,
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
            user = await User.objects.acreate(
                username=username,
                email=form.cleaned_data["email"],
                password=make_password(None),
            )
            await request.session.aset(
                LAST_ACTION,
                _action(
                    request,
                    [
                        f"Created user {user.username} (pk={user.pk}) with "
                        "await User.objects.acreate() in an async view.",
                        "acreate() runs save() in a worker thread (sync_to_async), and "
                        "post_save is sent synchronously there: the same receivers ran, "
                        "and the request's trace followed the work across the thread hop.",
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
        created = User.objects.bulk_create(new_users)
        profiles = Profile.objects.filter(user__in=created).count()
        request.session[LAST_ACTION] = _action(
            request,
            [
                f"Created {len(created)} users with User.objects.bulk_create(); "
                f"{profiles} of them have a Profile.",
                "bulk_create() never calls save(), so pre_save/post_save are not sent "
                "and create_user_profile did not run: there is no post_save in the tree. "
                "signaltrace noticed that receivers were connected and recorded a "
                "skipped dispatch instead (the line marked ⚠).",
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
        if profile is None:
            # A bulk-imported user has no Profile, and save_user_profile would
            # raise RelatedObjectDoesNotExist. Hand it a new, unsaved one: its
            # save() then creates the row.
            user.profile = Profile(user=user)
            notes.append(
                "This user had no Profile (bulk_create skipped post_save); "
                "save_user_profile created it now."
            )
        user.email = form.cleaned_data["email"]
        user.profile.bio = form.cleaned_data["bio"]
        user.save()
        request.session[LAST_ACTION] = _action(request, notes)
        return redirect("home")
    return render(
        request,
        "accounts/edit_profile.html",
        {"form": form, "subject": user, "profile": profile},
    )


@require_POST
def welcome(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    responses = user_welcomed.send_robust(sender=User, user=user)
    notes = [f"user_welcomed.send_robust(sender=User, user={user.username!r}) returned:"]
    for receiver, response in responses:
        if isinstance(response, Exception):
            notes.append(
                f"{_qualname(receiver)}: raised {type(response).__name__}: {response} "
                "(swallowed: send_robust returned the exception and the request succeeded; "
                "without signaltrace, only a log line on the django.dispatch logger tells you)"
            )
        else:
            notes.append(f"{_qualname(receiver)}: returned {response!r}")
    request.session[LAST_ACTION] = _action(request, notes)
    return redirect("home")


@require_http_methods(["GET", "POST"])
def delete_user(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(User, pk=pk)
    if request.method == "POST":
        username = user.username
        user.delete()
        backup = BackupRecord.objects.filter(username=username).first()
        notes = [f"Deleted user {username} with user.delete()."]
        if backup is not None:
            notes.append(
                f"backup_user_data (pre_delete) wrote BackupRecord #{backup.pk} "
                "before the user and its Profile were deleted."
            )
        request.session[LAST_ACTION] = _action(request, notes)
        return redirect("home")
    return render(request, "accounts/delete_user.html", {"subject": user})

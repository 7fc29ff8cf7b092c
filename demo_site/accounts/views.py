"""Views of the demo. Only ``welcome_all`` mentions signaltrace's capture().

``SignalTraceMiddleware`` records every request. Each action remembers the id
of its own request's trace (and a few notes) in the session and redirects
home (POST/redirect/GET); the home page then reads that finished trace from
the ring buffer the viewer also reads, shows its tree, and links to it.
``welcome_all`` also records its loop in a ``capture(max_events=...)`` of its
own, too small for it: a truncated trace, which the viewer marks.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from demo.tracing import current_trace_id, find_trace, keep_trace, trace_url
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

import signaltrace
from signaltrace import SkippedDispatch
from signaltrace._format import location
from signaltrace.middleware import shown

from .forms import BulkImportForm, ProfileForm, RegisterForm
from .models import BackupRecord, Profile
from .signals import user_welcomed

#: Session key of the last action (label, trace id, notes), shown once by the home page.
LAST_ACTION = "signaltrace_demo_last_action"
#: The event budget of welcome_all's own capture: one send_robust to the two
#: user_welcomed receivers is 3 events, so the second user's does not fit.
WELCOME_ALL_MAX_EVENTS: Final = 5
#: How many users welcome_all welcomes at most.
WELCOME_ALL_USERS: Final = 5


def _action(request: HttpRequest, notes: list[str], **extra: Any) -> dict[str, Any]:
    """What the home page needs to show this request's trace after the redirect.

    ``extra``: ``results`` (what ``send_robust`` returned, listed under the
    first note) and ``capture`` (the id of a trace of the view's own).
    """
    return {
        "label": f"{request.method} {request.path}",
        "trace_id": current_trace_id(),
        "notes": notes,
        **extra,
    }


def _count(number: int, word: str, plural: str = "s") -> str:
    return f"{number} {word}{'' if number == 1 else plural}"


def _qualname(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"


def _where(item: SkippedDispatch) -> str:
    """The call site of a skipped dispatch, as signaltrace writes paths everywhere."""
    origin = item.origin
    if origin is None:
        return ""
    return f"{location(origin.filename, origin.lineno)} in {origin.function}"


#: The characters of the tree-drawing prefix of a line of ``trace.render()``.
_PREFIX: Final = " │├└─"
#: Where a receiver call's line says what it raised.
_RAISED: Final = "  ✗ raised "


def tree_lines(trace: signaltrace.Trace) -> list[dict[str, Any]]:
    """``trace.render()`` line by line, for a ``<pre>`` that wraps long lines.

    Each line has its ``text``, the ``error`` part of a receiver that raised
    (``✗ raised ...``, highlighted), a ``kind`` (``head``, ``error``,
    ``skipped``, ``truncated`` or ``""``) and ``hang``: how far a wrapped
    continuation is indented (the width of the tree's prefix), in characters.
    """
    lines = []
    for number, line in enumerate(trace.render().splitlines()):
        text, raised, error = line.partition(_RAISED)
        prefix = len(line) - len(line.lstrip(_PREFIX))
        kind = "head" if number == 0 else ""
        if raised:
            kind = "error"
        elif line.startswith("⚠ truncated") or line.startswith("…"):
            kind = "truncated"
        elif line[prefix:].startswith("⚠"):
            kind = "skipped"
        lines.append(
            {
                "text": text,
                "error": f"{raised.lstrip()}{error}" if raised else "",
                "kind": kind,
                "hang": prefix + 3,
            }
        )
    return lines


def _trace_view(trace_id: str | None) -> dict[str, Any] | None:
    """What the home page shows of one kept trace, or ``None`` if it is gone."""
    trace = find_trace(trace_id) if trace_id else None
    if trace is None or trace_id is None:  # not recorded, or dropped from the buffer since
        return None
    return {
        "lines": tree_lines(trace),
        "url": trace_url(trace_id),
        "errors": len(trace.errors),
        "truncated": trace.truncated,
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


def _shown_action(request: HttpRequest, action: dict[str, Any] | None) -> dict[str, Any] | None:
    """The last action, with its finished trace from the ring buffer (if allowed)."""
    if action is None or not shown(request):
        return action
    trace = _trace_view(action.get("trace_id"))
    if trace is None:
        return action
    return {**action, "trace": trace, "capture": _trace_view(action.get("capture"))}


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
    results = []
    for receiver, response in responses:
        if isinstance(response, Exception):
            outcome = f"raised {type(response).__name__}: {response}"
        else:
            outcome = f"returned {response!r}"
        results.append(
            {
                "receiver": _qualname(receiver),
                "outcome": outcome,
                "raised": isinstance(response, Exception),
            }
        )
    notes = [
        f"user_welcomed.send_robust(sender=User, user={user.username!r}) returned "
        f"{len(results)} (receiver, response) pair{'' if len(results) == 1 else 's'}:",
    ]
    if any(result["raised"] for result in results):
        notes.append(
            "send_robust() swallowed the exception: it returned it as a response and the "
            "request succeeded. Without signaltrace, only a log line on the django.dispatch "
            "logger tells you."
        )
    request.session[LAST_ACTION] = _action(request, notes, results=results)
    return redirect("home")


@require_POST
def welcome_all(request: HttpRequest) -> HttpResponse:
    """Welcome several users, recording the loop in a capture too small for it."""
    users = list(User.objects.order_by("pk")[:WELCOME_ALL_USERS])
    label = f"welcome_all: {len(users)} users, capture(max_events={WELCOME_ALL_MAX_EVENTS})"
    with signaltrace.capture(label=label, max_events=WELCOME_ALL_MAX_EVENTS) as capped:
        for user in users:
            user_welcomed.send_robust(sender=User, user=user)
    capture_id = keep_trace(capped)  # the viewer lists it next to the request
    notes = [
        f"Sent user_welcomed.send_robust() for {len(users)} users, inside "
        f"signaltrace.capture(max_events={WELCOME_ALL_MAX_EVENTS}).",
        "The request's own trace (MAX_EVENTS=10,000) recorded every dispatch; the capture "
        "kept only what fit in its budget: one send_robust() is 3 events (the dispatch and "
        "its two receiver calls). "
        + (
            f"It holds {_count(len(capped.dispatches), 'dispatch', 'es')} and ends with "
            f"'⚠ truncated': "
            f"{capped.dropped} events were not recorded. Assertions such as "
            "assert_not_called() fail on such a trace instead of passing on what it missed."
            if capped.truncated
            else "With fewer than two users it was not truncated: register another user."
        ),
    ]
    request.session[LAST_ACTION] = _action(request, notes, capture=capture_id)
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

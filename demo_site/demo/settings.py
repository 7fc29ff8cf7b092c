"""Settings for the signaltrace demo site (development only: never deploy this).

One SQLite file next to ``manage.py``, no other service. The signaltrace parts:
``INSTALLED_APPS``, ``MIDDLEWARE`` (first entry), ``INTERNAL_IPS`` (who may see
traces), ``SIGNALTRACE`` and the structlog configuration at the end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import structlog

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo key, checked in on purpose: this site is for localhost only.
SECRET_KEY = "django-insecure-signaltrace-demo-not-for-production"
DEBUG = True
# "testserver" is the host django.test.Client uses (the demo_tour command).
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
# signaltrace's default SHOW_CALLBACK shows traces (the viewer, the
# X-Signaltrace-Id and Server-Timing headers) when DEBUG is on and the client
# is in INTERNAL_IPS, as django-debug-toolbar does. The test client is 127.0.0.1.
INTERNAL_IPS = ["127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "signaltrace",
    "accounts",
]

MIDDLEWARE = [
    # First, so that signals sent by the middleware below (SessionMiddleware
    # saving the session, for one) are in the trace; check W100 says so.
    "signaltrace.middleware.SignalTraceMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "demo.tracing.trace_links",
            ],
        },
    },
]

WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # DEMO_DB lets the test suite run the tour on a throwaway database.
        "NAME": os.environ.get("DEMO_DB") or BASE_DIR / "db.sqlite3",
    }
}

# Demo users get no password at all (set_unusable_password), so no validators.
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SIGNALTRACE = {
    "ENABLED": True,
    # Also show the pre_save/post_save a receiver sends even when nobody
    # listens (the Profile saves under create_user_profile), but not top-level
    # signals nobody listens to.
    "RECORD_EMPTY": "nested",
    # The fields of the one-line "signaltrace.request" structlog event.
    "LOG_FIELDS": [
        "method",
        "path",
        "status",
        "view",
        "receiver_calls",
        "receiver_ms",
        "receivers",
        "errors",
        "trace_id",
    ],
    # Everything else is the default: the ring buffer keeps the last 100
    # request traces for the viewer, RECORD_DB follows DEBUG (queries per
    # receiver), and under runserver each request's tree goes to the console.
}

# structlog renders signaltrace's per-request event as one readable line on
# stderr (next to runserver's own request log), in colour on a terminal.
structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
        structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty() and "NO_COLOR" not in os.environ,
            sort_keys=False,
        ),
    ],
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    cache_logger_on_first_use=False,
)

# send_robust() logs each exception it swallows on the "django.dispatch"
# logger, with a full traceback. Show it as one line so the demo output stays
# readable; the trace tree already says which receiver raised what.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "one_line": {
            "()": "demo.log.OneLineFormatter",
            "format": "[{name}] {levelname}: {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "one_line"},
    },
    "loggers": {
        "django.dispatch": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

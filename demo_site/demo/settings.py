"""Settings for the signaltrace demo site (development only: never deploy this).

One SQLite file next to ``manage.py``, no other service.
"""

from __future__ import annotations

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A demo key, checked in on purpose: this site is for localhost only.
SECRET_KEY = "django-insecure-signaltrace-demo-not-for-production"
DEBUG = True
# "testserver" is the host django.test.Client uses (the demo_tour command).
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
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
    # Once signaltrace's request middleware ships, put it first:
    # "signaltrace.middleware.SignalTraceMiddleware",
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
            ],
        },
    },
]

WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
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

SIGNALTRACE = {"ENABLED": True, "RECORD_EMPTY": "nested"}

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

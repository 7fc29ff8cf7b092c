from __future__ import annotations

SECRET_KEY = "signaltrace-tests"
DEBUG = True
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "signaltrace",
    "tests.testapp",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SIGNALTRACE = {"ENABLED": True}
MIDDLEWARE = ["signaltrace.middleware.SignalTraceMiddleware"]
INTERNAL_IPS = ["127.0.0.1"]
STATIC_URL = "/static/"
# Diagnostics (issue 6): bulk operations, receiver map and checks; diagdbapp has
# models only on Django 6.1+ (database-level on_delete).
INSTALLED_APPS += ["tests.diagapp", "tests.diagdbapp"]

"""Django settings of the test worker process (``celery -A tests.celeryapp.celery:app worker``).

The store is a ``CacheStore`` on the test's Redis (``SIGNALTRACE_TEST_REDIS``),
so the test process reads the task's trace where its own request trace is.
"""

from __future__ import annotations

import os

SECRET_KEY = "signaltrace-celery-tests"
DEBUG = True
USE_TZ = True
INSTALLED_APPS = ["signaltrace"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("SIGNALTRACE_TEST_REDIS", "redis://127.0.0.1:6379/0"),
    }
}
SIGNALTRACE = {
    "ENABLED": True,
    "CELERY": True,
    "LOG_LEVEL": None,
    "CONSOLE": None,
    "STORE": "signaltrace.stores.CacheStore",
}

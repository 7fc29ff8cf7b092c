"""Settings, URLs and WSGI app of the multi-worker test site (``tests/test_multiworker.py``).

gunicorn serves ``tests.gunicorn_settings:application`` with several worker
processes; this one module is the settings module, the URLconf and the app.
The store comes from the environment:

- ``SIGNALTRACE_TEST_STORE``: ``cache`` (CacheStore on ``SIGNALTRACE_TEST_REDIS``,
  a ``redis://`` URL), ``database`` (DatabaseStore on the SQLite file
  ``SIGNALTRACE_TEST_DB``, migrated beforehand) or ``memory`` (each worker its own).

Every response says which worker process answered, in ``X-Worker-Pid``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.core.wsgi import get_wsgi_application
from django.dispatch import Signal, receiver
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

SECRET_KEY = "signaltrace-gunicorn-tests"
DEBUG = True
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INTERNAL_IPS = ["127.0.0.1"]
INSTALLED_APPS = ["signaltrace"]
ROOT_URLCONF = __name__
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MIDDLEWARE = ["signaltrace.middleware.SignalTraceMiddleware", f"{__name__}.worker_pid"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SIGNALTRACE_TEST_DB", ":memory:"),
        # Three workers' sink threads write at once: wait for SQLite's lock.
        "OPTIONS": {"timeout": 20},
    }
}
_STORE = os.environ.get("SIGNALTRACE_TEST_STORE", "cache")
if "SIGNALTRACE_TEST_REDIS" in os.environ:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["SIGNALTRACE_TEST_REDIS"],
        }
    }
SIGNALTRACE = {
    "ENABLED": True,
    "LOG_LEVEL": None,
    "CONSOLE": None,
    "STORE": {
        "cache": "signaltrace.stores.CacheStore",
        "database": "signaltrace.stores.DatabaseStore",
        "memory": "signaltrace.stores.MemoryStore",
    }[_STORE],
}

#: Sent by the view, so each request's trace has a dispatch and a receiver call.
worker_ping = Signal()


@receiver(worker_ping)
def answer_ping(sender: Any, pid: int, **kwargs: Any) -> int:
    return pid


def worker_pid(get_response: Any) -> Any:
    """Middleware: ``X-Worker-Pid`` on every response (the viewer's too).

    ``?pause=S`` holds the worker for S seconds first: concurrent requests that
    each hold one are then answered by different workers.
    """

    def middleware(request: HttpRequest) -> Any:
        pause = float(request.GET.get("pause", 0))
        if pause:
            time.sleep(min(pause, 2.0))
        response = get_response(request)
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return middleware


def pid_view(request: HttpRequest) -> HttpResponse:
    worker_ping.send(sender="pid_view", pid=os.getpid())
    return HttpResponse(str(os.getpid()), content_type="text/plain")


urlpatterns = [
    path("pid/", pid_view),
    path("__signaltrace__/", include("signaltrace.urls")),
]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", __name__)
application = get_wsgi_application()

"""Settings for the django-debug-toolbar panel tests (``tests/panel_cases.py``).

They run in a pytest process of their own (see ``tests/test_panel.py``):
installing debug_toolbar registers system checks and a ``setting_changed``
receiver for the whole process, which the other tests must not see.
"""

from __future__ import annotations

from tests import settings as base
from tests.settings import *  # noqa: F403

INSTALLED_APPS = [*base.INSTALLED_APPS, "django.contrib.staticfiles", "debug_toolbar"]
MIDDLEWARE = [
    "signaltrace.middleware.SignalTraceMiddleware",
    "debug_toolbar.middleware.DebugToolbarMiddleware",
]
ROOT_URLCONF = "tests.urls_toolbar"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DEBUG_TOOLBAR_PANELS = [
    "debug_toolbar.panels.timer.TimerPanel",
    "debug_toolbar.panels.sql.SQLPanel",
    "signaltrace.panels.SignalTracePanel",
]
DEBUG_TOOLBAR_CONFIG = {
    # pytest-django runs tests with DEBUG off; show the toolbar anyway.
    "SHOW_TOOLBAR_CALLBACK": "tests.urls_toolbar.show_toolbar",
    "IS_RUNNING_TESTS": False,
}

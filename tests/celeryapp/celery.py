"""The Celery app, made as a project's ``proj/celery.py`` would make it.

Importing ``signaltrace.integrations.celery`` here enables the integration (in
the worker and in every process that imports the app), whatever ``CELERY`` says.
"""

from __future__ import annotations

import os

from celery import Celery

import signaltrace.integrations.celery  # noqa: F401  (enables the integration)

#: The queue the tests publish to and the worker consumes.
QUEUE = "signaltrace-tests"

app = Celery("celeryapp", include=["tests.celeryapp.tasks", "tests.celeryapp.receivers"])
app.conf.update(
    broker_url=os.environ.get("SIGNALTRACE_TEST_REDIS", "memory://"),
    broker_connection_retry_on_startup=True,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)

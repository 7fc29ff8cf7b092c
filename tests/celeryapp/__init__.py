"""A small Celery app for ``tests/test_celery.py``: an app, tasks, receivers and a view.

- :mod:`.celery`: the Celery app (broker from ``SIGNALTRACE_TEST_REDIS``), which
  imports ``signaltrace.integrations.celery`` as a project's Celery module would;
- :mod:`.signals` and :mod:`.receivers`: a ``user_registered`` signal whose
  receivers enqueue ``send_welcome`` (on commit, or too early, inside the
  transaction), and the ``welcome_sent`` signal the task sends in the worker;
- :mod:`.tasks`: ``send_welcome``;
- :mod:`.urls`: the view that registers a user inside ``transaction.atomic``,
  and the trace viewer;
- :mod:`.settings`: the Django settings of the worker process.
"""

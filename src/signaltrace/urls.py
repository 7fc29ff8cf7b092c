"""URLs of the trace viewer.

.. code-block:: python

    urlpatterns += [path("__signaltrace__/", include("signaltrace.urls"))]
"""

from __future__ import annotations

from django.urls import re_path

from .viewer import receivers, views

__all__ = ["app_name", "urlpatterns"]

app_name = "signaltrace"

urlpatterns = [
    re_path(r"^$", views.trace_list, name="trace_list"),
    re_path(r"^(?P<trace_id>[0-9a-f]{32})/$", views.trace_detail, name="trace_detail"),
    re_path(r"^(?P<trace_id>[0-9a-f]{32})\.json$", views.trace_json, name="trace_json"),
    re_path(r"^receivers/$", receivers.receivers_page, name="receivers"),
    re_path(r"^receivers\.json$", receivers.receivers_json, name="receivers_json"),
    re_path(r"^assets/(?P<name>viewer\.(?:css|js))$", views.asset, name="asset"),
]

from __future__ import annotations

from django.urls import include, path

from tests.testapp import views

urlpatterns: list[object] = []

urlpatterns += [
    path("__signaltrace__/", include("signaltrace.urls")),
    path("signal/<str:marker>/", views.signal_view, name="signal"),
    path("async-signal/<str:marker>/", views.async_signal_view, name="async-signal"),
    path("create-user/", views.create_user_view, name="create-user"),
    path("robust/", views.robust_view, name="robust"),
    path("raising/", views.raising_view, name="raising"),
    path("stream/", views.stream_view, name="stream"),
    path("broken-stream/", views.broken_stream_view, name="broken-stream"),
    path("async-stream/", views.async_stream_view, name="async-stream"),
    path("broken-async-stream/", views.broken_async_stream_view, name="broken-async-stream"),
    path("file/", views.file_view, name="file"),
    path("class/", views.ClassView.as_view(), name="class"),
    path("partial/", views.partial_view, name="partial"),
]

"""URLs of the accounts app (mounted at the site root)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("register/", views.register, name="register"),
    path("async-register/", views.async_register, name="async_register"),
    path("bulk-import/", views.bulk_import, name="bulk_import"),
    path("users/<int:pk>/edit/", views.edit_profile, name="edit_profile"),
    path("users/<int:pk>/welcome/", views.welcome, name="welcome"),
    path("welcome-all/", views.welcome_all, name="welcome_all"),
    path("users/<int:pk>/delete/", views.delete_user, name="delete_user"),
]

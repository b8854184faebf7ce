"""URL map: each app owns its namespace; the admin and django-rq's queue pages are admin-only."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.accounts.forms import ThrottledAuthenticationForm
from webapp.annotation.home import home
from webapp.core.views import healthz
from webapp.runs.dashboard import dashboard

urlpatterns = [
    path("", home, name="home"),
    path("dashboard/", dashboard, name="dashboard"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("library/", include("webapp.library.urls")),
    path("models/", include("webapp.registry.urls")),
    path("runs/", include("webapp.runs.urls")),
    path("generate/", include("webapp.generate.urls")),
    path("training/", include("webapp.training.urls")),
    path("spin/", include("webapp.spin.urls")),
    path("augcon/", include("webapp.augcon.urls")),
    path("aft/", include("webapp.aft.urls")),
    path("almost/", include("webapp.almost.urls")),
    path("evaluations/", include("webapp.evaluation.urls")),
    path("annotation/", include("webapp.annotation.urls")),
    path("webhooks/", include("webapp.webhooks.urls")),
    path("", include("webapp.api.urls")),
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]

"""URLs of the SPIN app."""

from django.urls import path

from . import views

app_name = "spin"
urlpatterns = [
    path("new/", views.spin_new, name="new"),
    path("estimate/", views.spin_estimate, name="estimate"),
]

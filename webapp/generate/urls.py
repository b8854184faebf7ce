"""URLs of the generate app."""

from django.urls import path

from . import views

app_name = "generate"
urlpatterns = [
    path("new/", views.generate_new, name="new"),
    path("new/estimate/", views.generate_estimate, name="estimate"),
]

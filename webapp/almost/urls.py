"""URLs of the almost app."""
from django.urls import path  # noqa: F401

app_name = "almost"
urlpatterns: list = []

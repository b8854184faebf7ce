"""URLs of the aft app."""
from django.urls import path  # noqa: F401

app_name = "aft"
urlpatterns: list = []

"""URLs of the spin app."""
from django.urls import path  # noqa: F401

app_name = "spin"
urlpatterns: list = []

"""URLs of the augcon app."""
from django.urls import path  # noqa: F401

app_name = "augcon"
urlpatterns: list = []

"""URLs of the JSON API (/api/v1/) and of the personal tokens page (/account/tokens/)."""

from __future__ import annotations

from django.urls import path

from . import views
from .api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("account/tokens/", views.token_list, name="api-tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.token_revoke, name="api-token-revoke"),
]

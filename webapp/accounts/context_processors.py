"""Exposes the user's role to templates so the navigation shows only reachable pages."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def role(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None}
    return {"user_role": user.effective_role}

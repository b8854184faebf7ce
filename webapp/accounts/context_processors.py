"""Exposes the user's role (the navigation shows only reachable pages) and the request's CSP nonce to templates."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def role(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None}
    return {"user_role": user.effective_role}


def csp_nonce(request: HttpRequest) -> dict[str, Any]:
    """`csp_nonce` for an inline script a template truly needs (ContentSecurityPolicyMiddleware)."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}

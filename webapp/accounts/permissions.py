"""Role checks for views: every view names the roles that may open it."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .models import User

Role = User.Role
RESEARCH_ROLES = (Role.ADMIN, Role.RESEARCHER)
ALL_ROLES = (Role.ADMIN, Role.RESEARCHER, Role.ANNOTATOR)


def role_required(*roles: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Refuse (403) users whose role is not listed; anonymous users never get here (middleware)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated or user.effective_role not in roles:
                raise PermissionDenied("Your role does not give access to this page.")
            return view(request, *args, **kwargs)

        wrapped.allowed_roles = tuple(roles)  # type: ignore[attr-defined]
        return wrapped

    return decorator


research_required = role_required(*RESEARCH_ROLES)
admin_required = role_required(Role.ADMIN)

"""Who may call an endpoint: a personal API token or a browser session, then the role, as on the pages.

`ApiTokenMiddleware` has already resolved a `Bearer` token (and answered 401 for a bad one), so the
token scheme here only confirms it and checks the role. A session is accepted with Django's CSRF
check on unsafe methods (the browser's own pages and the docs page send the token as a header).
Both schemes are declared so the OpenAPI schema and the docs page show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from webapp.accounts.permissions import ALL_ROLES, RESEARCH_ROLES

from .errors import ApiProblem


def _with_role(user: Any, roles: Sequence[str]) -> Any:
    if user.effective_role not in roles:
        raise ApiProblem(403, "Your role does not give access to this endpoint.")
    return user


class TokenAuth(HttpBearer):
    """`Authorization: Bearer rfy_...`: the token the middleware resolved, for a user of `roles`."""

    def __init__(self, roles: Sequence[str]) -> None:
        super().__init__()
        self.roles = tuple(roles)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_token = getattr(request, "api_token", None)
        if api_token is None:
            return None
        return _with_role(api_token.user, self.roles)


class SessionAuth(APIKeyCookie):
    """The browser's login session, with the CSRF check on unsafe methods."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, roles: Sequence[str]) -> None:
        super().__init__(csrf=True)
        self.roles = tuple(roles)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if getattr(request, "api_token", None) is not None or not request.user.is_authenticated:
            return None
        return _with_role(request.user, self.roles)


def auth_for(roles: Sequence[str]) -> list[Any]:
    return [TokenAuth(roles), SessionAuth(roles)]


RESEARCH_AUTH = auth_for(RESEARCH_ROLES)
"""Researchers and admins: the library, models, runs, campaigns' management, evaluations."""

EVERY_ROLE_AUTH = auth_for(ALL_ROLES)
"""Every signed-in role: an annotator's own assignments."""

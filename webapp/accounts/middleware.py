"""Login on every page, and the admin area for admins only.

Anything not explicitly public redirects anonymous users to the login form; anything under `/admin/`
(Django's admin, its login/logout views, django-rq's queue pages) is refused to every role but admin,
so a researcher cannot even reach the admin's own login form and sign in there as someone else.
"""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

PUBLIC_PATH_PREFIXES = ("/accounts/login/", "/static/", "/healthz")
ADMIN_PATH_PREFIX = "/admin/"


class LoginRequiredEverywhereMiddleware:
    """Deny by default, so a new view cannot be left open by forgetting a decorator."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PATH_PREFIXES):
            if request.headers.get("HX-Request"):
                response = HttpResponse(status=401)
                response["HX-Redirect"] = reverse(settings.LOGIN_URL)
                return response
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if request.path.startswith(ADMIN_PATH_PREFIX) and not request.user.is_admin_role:
            raise PermissionDenied("The admin area is for admins only.")
        return self.get_response(request)

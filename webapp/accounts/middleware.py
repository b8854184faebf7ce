"""Login on every page, and the admin area for admins only.

Anything not explicitly public redirects anonymous users to the login form; anything under `/admin/`
(Django's admin, its login/logout views, django-rq's queue pages) is refused to every role but admin,
so a researcher cannot even reach the admin's own login form and sign in there as someone else.
"""

from __future__ import annotations

import secrets
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


class ContentSecurityPolicyMiddleware:
    """A Content-Security-Policy header on every response; scripts only from this site or with the request's nonce.

    Pages load their scripts from /static/ (htmx, the workspace) and carry no inline scripts or
    event-handler attributes, so `script-src` needs no 'unsafe-inline'; an inline script a page
    truly needs takes `nonce="{{ csp_nonce }}"` (the context processor below; django-htmx's
    `{% htmx_script %}` adds it by itself). Styles keep 'unsafe-inline': templates set widths of
    progress bars and indents in `style` attributes, which no nonce can cover, and injected CSS
    cannot run code. django-rq's queue pages (admins only, under /admin/rq/) ship inline scripts of
    their own, so they alone get 'unsafe-inline' scripts instead of a nonce.
    """

    INLINE_SCRIPT_PATH_PREFIXES = ("/admin/rq/",)

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(18)  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy(request)
        return response

    def policy(self, request: HttpRequest) -> str:
        if request.path.startswith(self.INLINE_SCRIPT_PATH_PREFIXES):
            scripts = "'self' 'unsafe-inline'"
        else:
            scripts = f"'self' 'nonce-{request.csp_nonce}'"  # type: ignore[attr-defined]
        return "; ".join(
            [
                "default-src 'self'",
                f"script-src {scripts}",
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data:",
                "font-src 'self'",
                "connect-src 'self'",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )

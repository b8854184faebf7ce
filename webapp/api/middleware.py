"""Token authentication for /api/, ahead of the login-everywhere middleware.

`LoginRequiredEverywhereMiddleware` redirects anonymous requests to the login form, which a script
cannot follow. Under /api/ this middleware answers first: a `Bearer` token is resolved to its user
(a bad, unknown or revoked one gets 401 JSON at once), a request with neither a token nor a session
gets 401 JSON, and the docs page alone is left to the login redirect (a person opens it in a
browser). The token never logs anyone in: it sets `request.user` for this request only.

A multipart POST gets the library's upload limit installed here, before anything (the CSRF check
of a session caller) reads the body, as `size_limited_uploads` does for the pages.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict

from webapp.library.uploads import UploadLimit, library_upload_limit

from .errors import problem_response
from .tokens import token_authenticate

API_PATH_PREFIX = "/api/"
LOGIN_PAGE_PATHS = ("/api/v1/docs",)


def unauthorized(detail: str) -> HttpResponse:
    response = problem_response(401, detail)
    response["WWW-Authenticate"] = 'Bearer realm="refinery"'
    return response


class ApiTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return unauthorized("The Authorization header must be 'Bearer <token>'.")
            token = token_authenticate(secret.strip())
            if token is None:
                return unauthorized("This API token is unknown or revoked; create one at /account/tokens/.")
            request.user = token.user
            request.api_token = token  # type: ignore[attr-defined]
        elif not request.user.is_authenticated and not request.path.startswith(LOGIN_PAGE_PATHS):
            return unauthorized("Authentication required: send 'Authorization: Bearer <token>' or sign in.")
        if request.method == "POST" and request.content_type == "multipart/form-data":
            limit = UploadLimit(request, library_upload_limit())
            request.upload_limit = limit  # type: ignore[attr-defined]
            if limit.declared_problem is not None:
                # Never read the body: the endpoint answers 413 from the declared size alone.
                request._post, request._files = QueryDict(), MultiValueDict()  # type: ignore[attr-defined]
        return self.get_response(request)

"""The /api/v1/ API: one NinjaAPI, its error handlers, and the routers of every area.

Every error answers `{"detail", "errors": [{"field", "message"}]}` (webapp/api/errors.py): a
parameter or body that does not match the schema (422, naming the parameter), Django's Http404 and
PermissionDenied, a service's ValidationError (422), and ninja's own (401, 429 with Retry-After).
The OpenAPI schema is served at /api/v1/openapi.json; the docs page at /api/v1/docs loads Swagger
UI from this site's static files (ninja's bundled copy; "ninja" is in INSTALLED_APPS), so the
Content-Security-Policy needs no CDN, and it is behind login like every page.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as SchemaValidationError
from ninja.operation import Operation

from .auth import RESEARCH_AUTH
from .errors import ApiProblem, problem_handler, problem_response, validation_error_problem
from .routers import artifacts, campaigns, evaluations, library, models, runs


class RefineryApi(NinjaAPI):
    """The NinjaAPI whose operation ids are the view functions' names (`run_create`, `artifact_download`),
    which generated clients turn into method names, instead of ninja's module-prefixed default."""

    def get_openapi_operation_id(self, operation: Operation) -> str:
        return operation.view_func.__name__


api = RefineryApi(
    title="Refinery API",
    version="1",
    description="Everything the site does, scriptable. Authenticate with `Authorization: Bearer <token>` "
    "(create a token at /account/tokens/). Errors: `{detail, errors: [{field, message}]}`.",
    urls_namespace="api-v1",
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_decorator=login_required,
    # Each router names its own roles; this default (research roles, session with CSRF) also tells the
    # docs page to send the CSRF token, so "Try it out" works from a signed-in browser.
    auth=RESEARCH_AUTH,
)


def _location_name(location: Any) -> str | None:
    """A schema error's place as the caller wrote it: `fields.n` for a body field, `limit` for a parameter."""
    parts = [
        str(part) for part in location if part not in ("body", "query", "path", "header", "cookie", "form", "file")
    ]
    parts = [part for part in parts if part not in ("body", "params")]
    return ".".join(parts) or None


@api.exception_handler(SchemaValidationError)
def schema_validation_error(request: HttpRequest, error: SchemaValidationError) -> HttpResponse:
    errors = [
        {"field": _location_name(item.get("loc", ())), "message": item.get("msg", "invalid")} for item in error.errors
    ]
    return problem_response(422, "The input does not match the schema.", errors)


@api.exception_handler(ApiProblem)
def api_problem(request: HttpRequest, problem: ApiProblem) -> HttpResponse:
    return problem_handler(request, problem)


@api.exception_handler(ValidationError)
def service_validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return problem_handler(request, validation_error_problem(error))


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem_response(401, "Authentication required: send 'Authorization: Bearer <token>' or sign in.")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    return problem_response(error.status_code, str(error.message))


@api.exception_handler(Http404)
def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return problem_response(404, str(error) or "Not found.")


@api.exception_handler(PermissionDenied)
def permission_denied(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    return problem_response(403, str(error) or "Your role does not give access to this endpoint.")


api.add_router("", runs.router)
api.add_router("", artifacts.router)
api.add_router("", models.router)
api.add_router("", library.router)
api.add_router("", campaigns.router)
api.add_router("", campaigns.assignments_router)
api.add_router("", evaluations.router)

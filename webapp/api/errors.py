"""One error shape for every refusal: `{"detail": ..., "errors": [{"field": ..., "message": ...}]}`.

Views raise `ApiProblem` (or Django's Http404 / PermissionDenied, or a service's ValidationError /
InvalidConfigError, which `api.py` turns into this shape); a form's errors become one entry per
message, named by the form field (`field` null for a form-wide refusal), the same messages the
page shows beside its fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import HttpRequest, JsonResponse

from pipelines.errors import InvalidConfigError
from webapp.core.forms import add_validation_error


class ApiProblem(Exception):
    """A refusal with its HTTP status, message, field errors and extra headers (Retry-After)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None
) -> JsonResponse:
    response = JsonResponse({"detail": detail, "errors": errors or []}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def problem_handler(request: HttpRequest, problem: ApiProblem) -> JsonResponse:
    return problem_response(problem.status, problem.detail, problem.errors, problem.headers)


def form_problem(form: forms.Form, detail: str = "The input is not valid.", status: int = 422) -> ApiProblem:
    """The form's errors, one entry per message, named by field (null for the form as a whole)."""
    errors = [
        {"field": None if field == NON_FIELD_ERRORS else field, "message": str(message)}
        for field, messages in form.errors.items()
        for message in messages
    ]
    return ApiProblem(status, detail, errors)


def service_problem(form: forms.Form, error: ValidationError | InvalidConfigError) -> ApiProblem:
    """A service's refusal placed as the page places it (beside its field, or on top), then as JSON."""
    add_validation_error(form, error)
    return form_problem(form)


def validation_error_problem(error: ValidationError) -> ApiProblem:
    """A service's ValidationError without a form: its fields as they are named in the service."""
    if hasattr(error, "error_dict"):
        errors = [
            {"field": None if field == NON_FIELD_ERRORS else field, "message": message}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
    else:
        errors = [{"field": None, "message": message} for message in error.messages]
    return ApiProblem(422, "The input is not valid.", errors)

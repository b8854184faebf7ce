"""Idempotent form submissions: a key rendered into every form makes a repeated POST queue nothing new.

A double click, a browser retry or back-and-resubmit sends the same form twice. Every form rendered
with `templates/partials/_form_fields.html` carries a hidden `submission_key` (a fresh random key per
rendered form, kept when the form is shown again with errors, since nothing was created with it).
`SubmissionKeyMiddleware` makes the key of the current POST available to services
(`current_submission_key`) without every view passing it along, and turns `DuplicateSubmission`, which
a service raises when the key was already used, into a redirect to what the first submission created.
This keeps the method apps' views unchanged: only `webapp.runs.services.run_create` reads the key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

SUBMISSION_KEY_FIELD = "submission_key"
SUBMISSION_KEY_MIN_LENGTH = 8
SUBMISSION_KEY_MAX_LENGTH = 64

# Reads the key lazily: the middleware must not parse the body before the view (upload handlers).
_submission_key_reader: ContextVar[Callable[[], str] | None] = ContextVar("submission_key_reader", default=None)


class DuplicateSubmission(Exception):
    """This form was already submitted with the same key; `existing` is what that submission created."""

    def __init__(self, existing: Any, message: str) -> None:
        super().__init__(message)
        self.existing = existing


class InvalidSubmissionKey(Exception):
    """The posted key is not a key this site renders (wrong length or characters)."""


def new_submission_key() -> str:
    return uuid.uuid4().hex


def submission_key_is_valid(key: str) -> bool:
    return SUBMISSION_KEY_MIN_LENGTH <= len(key) <= SUBMISSION_KEY_MAX_LENGTH and key.isascii() and key.isalnum()


def current_submission_key() -> str:
    """The key of the POST being handled ("" outside a request or when the form sent none).

    Raises InvalidSubmissionKey for a key that was sent but is malformed, so it is never silently ignored.
    """
    reader = _submission_key_reader.get()
    if reader is None:
        return ""
    key = reader().strip()
    if key and not submission_key_is_valid(key):
        raise InvalidSubmissionKey(
            f"The form's {SUBMISSION_KEY_FIELD} must be {SUBMISSION_KEY_MIN_LENGTH} to {SUBMISSION_KEY_MAX_LENGTH} "
            "letters or digits; reload the form and submit it again."
        )
    return key


class SubmissionKeyMiddleware:
    """Exposes the POST's submission key to services and answers a duplicate with the first result."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return self.get_response(request)
        token = _submission_key_reader.set(lambda: request.POST.get(SUBMISSION_KEY_FIELD, ""))
        try:
            return self.get_response(request)
        finally:
            _submission_key_reader.reset(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DuplicateSubmission):
            messages.info(request, str(exception))
            return redirect(exception.existing)
        if isinstance(exception, InvalidSubmissionKey):
            return HttpResponse(str(exception), status=400, content_type="text/plain; charset=utf-8")
        return None

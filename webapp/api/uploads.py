"""Library uploads over the API: the pages' own upload flow (`webapp.library.uploads.upload_import`).

`ApiTokenMiddleware` installs the library's size limit on every multipart POST before the body is
read; here the body is read through it, a file over the limit answers 413 (nothing imported), and
the page's form and import service do the rest, their refusals coming back as 422 with the field.
The multipart request body of each upload operation is described in the OpenAPI schema from the
same form (`form_request_body`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Model
from django.http import HttpRequest

from webapp.library.uploads import Importer, upload_import

from .errors import ApiProblem, form_problem


def import_upload(request: HttpRequest, *, form_class: type[forms.Form], importer: Importer) -> Model:
    """What the upload saved; raises ApiProblem 415 (not multipart), 413 (too large), 422 (refused)."""
    limit = getattr(request, "upload_limit", None)
    if limit is None:
        raise ApiProblem(415, "Send the upload as multipart/form-data, the file in the `file` part.")
    if limit.declared_problem is None:
        request.FILES  # noqa: B018 - reads the body through the size-limit handler
    too_large = limit.problem()
    if too_large is not None:
        raise ApiProblem(413, too_large, [{"field": "file", "message": too_large}])
    outcome = upload_import(request, form_class=form_class, importer=importer)
    if outcome.saved is not None:
        return outcome.saved
    problem = form_problem(outcome.form, detail=outcome.problem or "The upload is not valid.")
    if outcome.problem:
        problem.errors.append({"field": "file", "message": outcome.problem})
    raise problem


def _field_schema(field: forms.Field) -> dict[str, Any]:
    if isinstance(field, forms.FileField):
        return {"type": "string", "format": "binary"}
    if isinstance(field, forms.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, forms.ChoiceField):
        return {"type": "string", "enum": [str(value) for value, _ in field.choices]}
    schema: dict[str, Any] = {"type": "string"}
    if getattr(field, "max_length", None):
        schema["maxLength"] = field.max_length
    return schema


def form_request_body(form_class: type[forms.Form]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a multipart upload whose parts are the form's fields."""
    properties = {}
    for name, field in form_class.base_fields.items():
        properties[name] = {**_field_schema(field), "description": str(field.help_text or field.label or name)}
    required = [name for name, field in form_class.base_fields.items() if field.required]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": required}}
            },
        }
    }

"""Schemas every router shares: the error shape, the page shape and the responses each operation declares."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Model, QuerySet
from ninja import Field, Schema


class ErrorItem(Schema):
    field: str | None = Field(
        None, description="The form field (or parameter) at fault; null for the input as a whole."
    )
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[ErrorItem] = []


class PageParams(Schema):
    offset: int = Field(0, ge=0, le=10_000_000)
    limit: int = Field(50, ge=1, le=200)


def page(items: QuerySet[Any] | list[Any], params: PageParams) -> dict[str, Any]:
    """`{"count": N, "items": [...]}` of items [offset, offset+limit)."""
    count = items.count() if isinstance(items, QuerySet) else len(items)
    return {"count": count, "items": list(items[params.offset : params.offset + params.limit])}


AUTH_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut}
"""Every operation: no or bad credentials (401), a role that may not (403)."""

READ_ERRORS: dict[int, type[Schema]] = {**AUTH_ERRORS, 404: ErrorOut, 422: ErrorOut}
"""A read of one object, or with parameters."""

WRITE_ERRORS: dict[int, type[Schema]] = {**READ_ERRORS, 400: ErrorOut, 409: ErrorOut}
"""A write: also malformed bodies (400) and state conflicts (409)."""

THROTTLED_ERRORS: dict[int, type[Schema]] = {**WRITE_ERRORS, 413: ErrorOut, 429: ErrorOut}
"""A rate-limited write (run creation, uploads): also too large (413) and too many (429)."""


MAX_ID = 2**63 - 1
"""Ids are PostgreSQL bigints: a larger number in a path is refused as input (422), never sent to the database."""

UPLOAD_ERRORS: dict[int, type[Schema]] = {**THROTTLED_ERRORS, 415: ErrorOut}
"""A multipart upload: also a body that is not multipart (415)."""


def plain(value: Any) -> Any:
    """A selector's figures as JSON: dataclasses as dicts, model rows as `{"id", "name"}`, the rest as is.

    The statistics and leaderboard selectors hand the pages Python objects (an `ItemVotes`, a
    `ModelEntry`); the API sends the same figures, not a second computation of them.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, Model):
        return {"id": value.pk, "name": str(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(item) for item in value]
    return value

"""Services of personal API tokens: create (the secret is returned once), revoke, and authenticate.

A secret is `rfy_` plus 43 random URL-safe characters (256 bits); the table holds its SHA-256, so a
leaked database does not leak usable tokens, and lookup is one indexed equality (no secret
comparison in Python). `last_used_at` is written at most once a minute per token, so a busy script
does not turn every read into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import ApiToken

SECRET_PREFIX = "rfy_"
DISPLAY_PREFIX_LENGTH = 12  # "rfy_" and 8 random characters
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedToken:
    """A new token and its secret: the only moment the secret exists outside the caller's hands."""

    token: ApiToken
    secret: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def token_create(*, user: Any, name: str) -> CreatedToken:
    """A new active token for `user`; the secret is in the result and nowhere else."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the token a name that says what it is for."})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, prefix=secret[:DISPLAY_PREFIX_LENGTH], secret_hash=secret_hash(secret))
    token.full_clean()
    token.save()
    return CreatedToken(token=token, secret=secret)


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke for good (revoking twice keeps the first time)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_authenticate(secret: str) -> ApiToken | None:
    """The active token with this secret, whose user is active; None for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(secret_hash=secret_hash(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_list(*, user: Any) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user))

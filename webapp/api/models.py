"""Personal API tokens: a user's scripts and notebooks act as that user, with that user's role."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """One personal token. Only the secret's SHA-256 is stored: the secret is shown once, at creation.

    `prefix` (the secret's first characters) lets the owner tell tokens apart on the tokens page
    without the secret ever being stored or shown again. A revoked token stays listed (when and
    what it was) but authenticates nothing.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="api_tokens", on_delete=models.CASCADE)
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'sweep script on gpu-2'.")
    prefix = models.CharField(max_length=16, help_text="The secret's first characters, for telling tokens apart.")
    secret_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

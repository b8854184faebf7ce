"""Users and the role that decides which pages each one may open."""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A Refinery user; `role` decides what they see, superusers are always admins."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        RESEARCHER = "researcher", "Researcher"
        ANNOTATOR = "annotator", "Annotator"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESEARCHER)

    @property
    def effective_role(self) -> str:
        return self.Role.ADMIN if self.is_superuser else self.role

    @property
    def is_admin_role(self) -> bool:
        return self.effective_role == self.Role.ADMIN

    @property
    def is_researcher_role(self) -> bool:
        """Researchers and admins may use the library, registry and runs."""
        return self.effective_role in (self.Role.ADMIN, self.Role.RESEARCHER)

"""Test settings: fast hashing, a file-backed SQLite test DB when no DATABASE_URL is given."""
from __future__ import annotations

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR

SECRET_KEY = os.environ.get("SECRET_KEY") or "test-only-insecure-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so worker subprocesses can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-refinery.sqlite3")}
RUN_HEARTBEAT_STALE_SECONDS = int(os.environ.get("RUN_HEARTBEAT_STALE_SECONDS", 8))
# The tests' OpenAI-compatible servers listen on 127.0.0.1.
REFINERY_ENDPOINT_ALLOW_LOOPBACK = True

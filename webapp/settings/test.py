"""Test settings: fast hashing, a file-backed SQLite test DB when no DATABASE_URL is given, and an
artifact root of the test session's own, never the checkout's live var/artifacts."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

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
    # With DATABASE_URL naming a SQLite file, the test database sits beside it (so separate checkouts
    # or sessions given separate files never share one).
    named = os.environ.get("DATABASE_URL", "").startswith("sqlite")
    database_file = Path(DATABASES["default"]["NAME"])
    test_file = database_file.with_name(database_file.stem + "-test.sqlite3") if named else VAR_DIR / "test-refinery.sqlite3"
    DATABASES["default"]["TEST"] = {"NAME": str(test_file)}
RUN_HEARTBEAT_STALE_SECONDS = int(os.environ.get("RUN_HEARTBEAT_STALE_SECONDS", 8))
# The tests' OpenAI-compatible servers listen on 127.0.0.1.
REFINERY_ENDPOINT_ALLOW_LOOPBACK = True

# Campaign exports, datasets and run directories that tests write go to a temporary folder made once
# per test session, never into the checkout's var/artifacts (where the demo's own files live). The
# session exports it as ARTIFACT_ROOT, marked as its own, so every subprocess a test starts (a
# worker, a management command) inherits the same root; tests that need one per test still
# override it (tests/fixtures/services.py `live_settings`) and hand theirs to their workers.
TEST_SESSION_ARTIFACTS_MARKER = "REFINERY_TEST_SESSION_ARTIFACT_ROOT"
if os.environ.get(TEST_SESSION_ARTIFACTS_MARKER) and os.environ.get("ARTIFACT_ROOT"):
    ARTIFACT_ROOT = Path(os.environ["ARTIFACT_ROOT"])
else:
    ARTIFACT_ROOT = Path(tempfile.mkdtemp(prefix="refinery-test-artifacts-"))
    os.environ["ARTIFACT_ROOT"] = str(ARTIFACT_ROOT)
    os.environ[TEST_SESSION_ARTIFACTS_MARKER] = str(ARTIFACT_ROOT)
    atexit.register(shutil.rmtree, ARTIFACT_ROOT, ignore_errors=True)
MEDIA_ROOT = ARTIFACT_ROOT / "uploads"

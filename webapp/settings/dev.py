"""Local development: debug on, a throwaway secret unless one is given."""
from __future__ import annotations

import os

from .base import *  # noqa: F403

DEBUG = os.environ.get("DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-not-for-production"
# A local `vllm serve` or `transformers serve` on this machine may be registered as an endpoint.
REFINERY_ENDPOINT_ALLOW_LOOPBACK = os.environ.get("REFINERY_ENDPOINT_ALLOW_LOOPBACK", "1") == "1"

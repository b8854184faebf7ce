"""The webhook signature: HMAC-SHA256 over "<timestamp>.<raw body>" with the hook's secret.

The timestamp is part of the signed string, so a receiver that refuses old timestamps cannot be
replayed a captured delivery later (docs/webhooks.md has the receiver's side). Pure Python: the
worker signs with it and the tests verify with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Refinery-Signature"
TIMESTAMP_HEADER = "X-Refinery-Timestamp"
EVENT_HEADER = "X-Refinery-Event"
DELIVERY_HEADER = "X-Refinery-Delivery"
SECRET_PREFIX = "whsec_"


def secret_generate() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The header value, `sha256=<hex>`, for this body sent at this Unix timestamp."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_valid(
    *, secret: str, timestamp: str, body: bytes, header: str, now: float, tolerance_seconds: int = 300
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (no replay)."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret=secret, timestamp=sent_at, body=body), header)

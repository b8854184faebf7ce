"""The signature a receiver checks: HMAC-SHA256 over "<timestamp>.<body>", with replays refused by age."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

from webapp.webhooks.signing import secret_generate, signature, signature_valid


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    secret = secret_generate()
    body = b'{"event":"run.succeeded"}'
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(secret=secret, timestamp=1700000000, body=body) == f"sha256={expected}"


def test_a_fresh_signature_verifies_and_any_change_breaks_it():
    secret, body, now = secret_generate(), b'{"run":{"id":1}}', time.time()
    header = signature(secret=secret, timestamp=int(now), body=body)
    assert signature_valid(secret=secret, timestamp=str(int(now)), body=body, header=header, now=now)
    assert not signature_valid(secret=secret, timestamp=str(int(now)), body=body + b" ", header=header, now=now)
    assert not signature_valid(secret=secret_generate(), timestamp=str(int(now)), body=body, header=header, now=now)
    assert not signature_valid(secret=secret, timestamp=str(int(now) + 1), body=body, header=header, now=now)


def test_an_old_delivery_replayed_later_is_refused():
    secret, body = secret_generate(), b"{}"
    sent_at = 1700000000
    header = signature(secret=secret, timestamp=sent_at, body=body)
    assert signature_valid(secret=secret, timestamp=str(sent_at), body=body, header=header, now=sent_at + 60)
    assert not signature_valid(secret=secret, timestamp=str(sent_at), body=body, header=header, now=sent_at + 3600)


def test_secrets_are_long_random_and_distinct():
    secrets = {secret_generate() for _ in range(20)}
    assert len(secrets) == 20
    assert all(secret.startswith("whsec_") and len(secret) > 40 for secret in secrets)


def test_the_receiver_snippet_in_the_docs_verifies_a_real_signature():
    docs = (Path(__file__).resolve().parents[3] / "docs" / "webhooks.md").read_text()
    snippet = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(snippet, namespace)  # noqa: S102 (our own documentation)
    secret, body, timestamp = str(namespace["WEBHOOK_SECRET"]), b'{"event":"run.failed"}', int(time.time())
    headers = {
        "X-Refinery-Timestamp": str(timestamp),
        "X-Refinery-Signature": signature(secret=secret, timestamp=timestamp, body=body),
    }
    authentic = namespace["delivery_is_authentic"]
    assert authentic(body, headers)
    assert not authentic(body + b"x", headers)
    assert not authentic(body, {**headers, "X-Refinery-Timestamp": str(timestamp - 3600)})

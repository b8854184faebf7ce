"""RQ entry point for webhook deliveries: one attempt per job, the next one scheduled with a delay.

The payload is posted exactly as stored (the same bytes on every attempt, so the receiver can
de-duplicate by the `X-Refinery-Delivery` header), signed with the hook's secret over
"<timestamp>.<body>" (webapp/webhooks/signing.py). The URL is checked against the address policy
again right before the POST (a DNS record may have changed since registration), redirects are never
followed (a 3xx counts as a failure), and the timeout is short, so a slow receiver holds a worker
for seconds at most. Failures are data: each attempt is a log row, and the retry is a new job
scheduled with `enqueue_at` (`not_before`), which the worker's scheduler (`rqworker --with-scheduler`) releases.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import django_rq
import httpx
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from webapp.webhooks import services
from webapp.webhooks.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

logger = logging.getLogger(__name__)

RESPONSE_TEXT_KEPT = 300


def deliver_webhook_job(delivery_id: int) -> str:
    """Make the next attempt of a delivery; returns what happened ("delivered", "retrying in 10 s", ...)."""
    close_old_connections()
    plan = services.delivery_attempt_start(delivery_id=delivery_id)
    if plan is None:
        return "nothing to do"
    started_at = timezone.now()
    clock = time.monotonic()
    response_code, error = _post(plan)
    duration_ms = int((time.monotonic() - clock) * 1000)
    next_delay = services.delivery_attempt_record(
        delivery_id=delivery_id,
        number=plan.number,
        started_at=started_at,
        duration_ms=duration_ms,
        response_code=response_code,
        error=error,
    )
    if next_delay is not None:
        django_rq.get_queue("default").enqueue_at(
            not_before(timedelta(seconds=next_delay)),
            services.DELIVERY_JOB,
            delivery_id,
            job_timeout=settings.REFINERY_WEBHOOK_TIMEOUT_SECONDS * 4 + 30,
            failure_ttl=7 * 24 * 3600,
        )
        return f"attempt {plan.number} failed ({error or response_code}); retrying in {next_delay} s"
    return "delivered" if not error and response_code and 200 <= response_code < 300 else f"gave up: {error}"


def _post(plan: services.AttemptPlan) -> tuple[int | None, str]:
    """(HTTP status, why it failed) for one POST; the error is "" only for a 2xx answer."""
    problem = services.webhook_url_problem(plan.url, allow_private=settings.REFINERY_WEBHOOK_ALLOW_PRIVATE)
    if problem:
        return None, f"Refused before sending: {problem}"
    body = json.dumps(plan.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Refinery-Webhooks/1",
        EVENT_HEADER: plan.event,
        DELIVERY_HEADER: str(plan.delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret=plan.secret, timestamp=timestamp, body=body),
    }
    try:
        response = httpx.post(
            plan.url,
            content=body,
            headers=headers,
            timeout=settings.REFINERY_WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,  # no proxy from the worker's environment
        )
    except httpx.HTTPError as failure:
        return None, f"{type(failure).__name__}: {failure}"
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    if response.is_redirect:
        return (
            response.status_code,
            f"HTTP {response.status_code}: redirects are not followed (to {response.headers.get('location', '?')})",
        )
    return response.status_code, f"HTTP {response.status_code}: {response.text[:RESPONSE_TEXT_KEPT]}"


def not_before(delay: timedelta) -> datetime:
    """The first whole second at least `delay` from now, in UTC.

    Why: RQ's scheduler keeps a job's time in whole seconds, cut down (`utctimetuple`): a retry put
    `enqueue_in(1 s)` at 12:00:00.9 is stored as due at 12:00:01 and may go out 0.1 s after the failure.
    Rounding up keeps every retry at least its delay after the failure.
    """
    due = datetime.now(UTC) + delay
    return due.replace(microsecond=0) + timedelta(seconds=1) if due.microsecond else due

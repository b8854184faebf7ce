"""Every write of the webhooks app: register and delete hooks, raise events, and record each attempt.

An event is raised after the transaction that caused it commits (`transaction.on_commit(...,
robust=True)` at the call sites), so a failing hook, a slow receiver or an unreachable Redis never
blocks or fails a run: each matching hook gets one WebhookDelivery row and one RQ job on the
`default` queue (`workers.webhooks.deliver_webhook_job`, named by a string: the web process never
imports worker code). The worker posts, records the attempt here, and schedules the next attempt
with a growing delay (settings.REFINERY_WEBHOOK_RETRY_SECONDS) until the receiver answers 2xx or the
attempts run out. Scheduled attempts need the worker's scheduler (`rqworker --with-scheduler`).

Security: the payload holds a run's or campaign's public fields only (never its config, a file
path or anything from the worker's environment), and the URL must resolve to a public address
unless the operator allows private ones (REFINERY_WEBHOOK_ALLOW_PRIVATE); the worker checks again
right before each POST and never follows redirects.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import django_rq
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from pipelines.llm.endpoint_policy import EndpointPolicy, address_problem

from .models import Event, Webhook, WebhookAttempt, WebhookDelivery
from .signing import secret_generate

logger = logging.getLogger(__name__)

DELIVERY_JOB = "workers.webhooks.deliver_webhook_job"
RUN_EVENTS = {"succeeded": Event.RUN_SUCCEEDED, "failed": Event.RUN_FAILED, "cancelled": Event.RUN_CANCELLED}
RUN_ERROR_CHARACTERS_SENT = 1000


# ---------------------------------------------------------------- hooks


def webhook_url_check(url: str) -> None:
    """ValidationError on `url` when it is not http(s) or its host is, or resolves to, an address hooks may not reach.

    Loopback (this machine) and private networks are refused unless settings.REFINERY_WEBHOOK_ALLOW_PRIVATE;
    link-local, cloud metadata and reserved addresses always are. The worker repeats the check before each POST.
    """
    problem = webhook_url_problem(url, allow_private=settings.REFINERY_WEBHOOK_ALLOW_PRIVATE)
    if problem:
        raise ValidationError({"url": problem})


def webhook_url_problem(url: str, *, allow_private: bool) -> str:
    """Why a hook may not be sent to `url` ("" when it may)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        return f"Webhook URL {url!r} must start with http:// or https://."
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return f"Webhook URL {url!r} names no host."
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"Webhook URL {url!r} has an invalid port."
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except OSError as error:
        return f"Webhook URL {url!r}: host {host} does not resolve here ({error})."
    if not addresses:
        return f"Webhook URL {url!r}: host {host} resolves to no address."
    policy = EndpointPolicy(allow_loopback=allow_private, allow_private=allow_private)
    for address in addresses:
        problem = address_problem(address, policy)
        if not problem:
            continue
        shown = host if host == address else f"{host} resolves to {address}, which"
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if ip.is_loopback or (ip.is_private and not ip.is_link_local):
            return (
                f"Webhook URL {url!r}: {shown} is on this machine or a private network. Webhooks go only to public "
                "addresses unless the operator sets REFINERY_WEBHOOK_ALLOW_PRIVATE=1."
            )
        return f"Webhook URL {url!r}: {shown} is {problem}."
    return ""


def webhook_create(*, owner: Any, url: str, events: list[str], scope: str = Webhook.Scope.MINE) -> Webhook:
    """Register a hook with a fresh secret; the caller shows `webhook.secret` once and never again."""
    unknown = [event for event in events if event not in Event.values]
    if unknown:
        raise ValidationError(
            {"events": f"Unknown event(s): {', '.join(unknown)}; choose from {', '.join(Event.values)}."}
        )
    if not events:
        raise ValidationError({"events": "Choose at least one event."})
    if scope == Webhook.Scope.ALL and not owner.is_admin_role:
        raise ValidationError({"scope": "Only admins may register a hook for every user's runs and campaigns."})
    webhook = Webhook(
        owner=owner, url=url.strip(), secret=secret_generate(), events=list(dict.fromkeys(events)), scope=scope
    )
    webhook.full_clean()
    webhook_url_check(webhook.url)
    webhook.save()
    return webhook


def webhook_delete(*, webhook: Webhook, user: Any) -> None:
    """Delete a hook and its delivery log; only its owner or an admin may."""
    if webhook.owner_id != user.pk and not user.is_admin_role:
        raise PermissionDenied("This webhook belongs to someone else.")
    webhook.delete()


# ---------------------------------------------------------------- events


def _hooks_for(event: str, owner_id: int | None) -> list[Webhook]:
    """Active hooks subscribed to `event` that may hear about an object owned by `owner_id`."""
    hooks = Webhook.objects.filter(is_active=True).filter(Q(scope=Webhook.Scope.ALL) | Q(owner_id=owner_id))
    # Filtered in Python: JSON containment differs between PostgreSQL and SQLite, and hooks are few.
    return [hook for hook in hooks.select_related("owner") if event in hook.events]


def _raise_event(*, event: str, subject: str, owner_id: int | None, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """One delivery per matching hook (never a second for the same event), each enqueued on commit."""
    deliveries = []
    for hook in _hooks_for(event, owner_id):
        delivery, created = WebhookDelivery.objects.get_or_create(
            webhook=hook, event=event, subject=subject, defaults={"payload": payload}
        )
        if created:
            delivery.payload = {**payload, "delivery": delivery.pk}
            delivery.save(update_fields=["payload"])
            deliveries.append(delivery)
            transaction.on_commit(lambda delivery_id=delivery.pk: _enqueue_attempt(delivery_id), robust=True)
    return deliveries


def _enqueue_attempt(delivery_id: int) -> None:
    django_rq.get_queue("default").enqueue(
        DELIVERY_JOB,
        delivery_id,
        job_timeout=settings.REFINERY_WEBHOOK_TIMEOUT_SECONDS * 4 + 30,
        failure_ttl=7 * 24 * 3600,
    )


def run_payload(run: Any) -> dict[str, Any]:
    """A run's public fields, the ones its page shows to every researcher; never its config."""
    return {
        "id": run.pk,
        "kind": run.kind,
        "kind_label": run.kind_label,
        "name": run.name,
        "status": run.status,
        "attempt": run.attempt,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error[:RUN_ERROR_CHARACTERS_SENT],
        "artifacts": [{"id": artifact.pk, "name": artifact.name} for artifact in run.artifacts.all()],
        "url": run.get_absolute_url(),
    }


@transaction.atomic
def webhooks_run_finished(*, run_id: int) -> list[WebhookDelivery]:
    """Raise run.succeeded / run.failed / run.cancelled for a run that reached that status (once per attempt)."""
    from webapp.runs.models import PipelineRun

    run = PipelineRun.objects.filter(pk=run_id).first()
    if run is None or run.status not in RUN_EVENTS:
        return []
    event = RUN_EVENTS[run.status]
    if not _hooks_for(event, run.created_by_id):
        return []
    payload = {"event": event.value, "sent_for": f"run {run.pk}", "run": run_payload(run)}
    return _raise_event(event=event, subject=f"run:{run.pk}:{run.attempt}", owner_id=run.created_by_id, payload=payload)


def webhooks_campaign_judged(*, campaign_id: int, owner_id: int | None) -> list[WebhookDelivery]:
    """Raise campaign.completed when every item of the campaign has its `overlap` judgments (once per campaign).

    Called after each judgment commits, with the campaign's creator; it costs one small query when
    nobody listens (the common case), so judging stays as fast as it was.
    """
    if not _hooks_for(Event.CAMPAIGN_COMPLETED, owner_id):
        return []
    return _campaign_completed(campaign_id=campaign_id)


@transaction.atomic
def _campaign_completed(*, campaign_id: int) -> list[WebhookDelivery]:
    from webapp.annotation.models import Campaign

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return []
    items = campaign.items.annotate(
        judged=Count("judgments", filter=Q(judgments__withdrawn_at__isnull=True), distinct=True)
    ).values_list("judged", flat=True)
    judged_counts = list(items)
    if not judged_counts or any(judged < campaign.overlap for judged in judged_counts):
        return []
    payload = {
        "event": Event.CAMPAIGN_COMPLETED.value,
        "sent_for": f"campaign {campaign.pk}",
        "campaign": {
            "id": campaign.pk,
            "name": campaign.name,
            "items": len(judged_counts),
            "overlap": campaign.overlap,
            "judgments": sum(judged_counts),
            "created_at": campaign.created_at.isoformat(),
            "url": campaign.get_absolute_url(),
        },
    }
    return _raise_event(
        event=Event.CAMPAIGN_COMPLETED,
        subject=f"campaign:{campaign.pk}",
        owner_id=campaign.created_by_id,
        payload=payload,
    )


# ---------------------------------------------------------------- attempts


@dataclass(frozen=True)
class AttemptPlan:
    """What the worker needs for one attempt: where to post, what to sign with, which attempt it is."""

    delivery_id: int
    number: int
    url: str
    secret: str
    event: str
    payload: dict[str, Any]


def retry_delays() -> list[int]:
    """Seconds to wait before attempt 2, 3, ...; its length + 1 is the number of attempts."""
    return [int(seconds) for seconds in settings.REFINERY_WEBHOOK_RETRY_SECONDS]


@transaction.atomic
def delivery_attempt_start(*, delivery_id: int) -> AttemptPlan | None:
    """The next attempt of a delivery still under way, or None (delivered, given up, hook deleted or inactive)."""
    delivery = WebhookDelivery.objects.select_for_update().select_related("webhook").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED):
        return None
    if not delivery.webhook.is_active:
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.error = "The webhook was deactivated before this delivery was sent."
        delivery.save(update_fields=["status", "error"])
        return None
    delivery.attempt_count += 1
    delivery.last_attempt_at = timezone.now()
    delivery.save(update_fields=["attempt_count", "last_attempt_at"])
    return AttemptPlan(
        delivery_id=delivery.pk,
        number=delivery.attempt_count,
        url=delivery.webhook.url,
        secret=delivery.webhook.secret,
        event=delivery.event,
        payload=delivery.payload,
    )


@transaction.atomic
def delivery_attempt_record(
    *,
    delivery_id: int,
    number: int,
    started_at: Any,
    duration_ms: int,
    response_code: int | None,
    error: str,
) -> int | None:
    """Log the attempt; returns the seconds to wait before the next one, or None when there is none.

    A 2xx answer delivers; anything else (another status, a timeout, a refused URL) is retried
    until the delays in REFINERY_WEBHOOK_RETRY_SECONDS are used up, then the delivery is failed.
    """
    succeeded = response_code is not None and 200 <= response_code < 300 and not error
    WebhookAttempt.objects.create(
        delivery_id=delivery_id,
        number=number,
        started_at=started_at,
        duration_ms=duration_ms,
        response_code=response_code,
        error=error[:2000],
        succeeded=succeeded,
    )
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    delivery.response_code = response_code
    delivery.error = "" if succeeded else error[:2000]
    delays = retry_delays()
    next_delay: int | None = None
    if succeeded:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
    elif number <= len(delays):
        delivery.status = WebhookDelivery.Status.RETRYING
        next_delay = delays[number - 1]
    else:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(update_fields=["response_code", "error", "status", "delivered_at"])
    return next_delay

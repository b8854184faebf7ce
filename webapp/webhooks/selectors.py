"""Reads of the webhooks app: a user's hooks, and a hook's delivery log with its attempts."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from .models import Webhook, WebhookAttempt, WebhookDelivery

DELIVERIES_SHOWN = 100


def webhooks_visible_to(*, user: Any) -> QuerySet[Webhook]:
    """A user's own hooks; an admin sees everyone's."""
    hooks = Webhook.objects.select_related("owner")
    return hooks if user.is_admin_role else hooks.filter(owner=user)


def webhook_get(*, webhook_id: int, user: Any) -> Webhook:
    """The hook if the user may see it; 404 otherwise (another user's hook is not admitted to exist)."""
    webhook = webhooks_visible_to(user=user).filter(pk=webhook_id).first()
    if webhook is None:
        raise Http404("No such webhook.")
    return webhook


def delivery_log(*, webhook: Webhook) -> list[WebhookDelivery]:
    """The hook's latest deliveries, newest first, each with its attempts in order."""
    return list(
        webhook.deliveries.prefetch_related(Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number")))[
            :DELIVERIES_SHOWN
        ]
    )

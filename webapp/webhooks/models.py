"""Webhooks: URLs a user registered to hear about finished runs and completed campaigns, and the log of
every delivery (one row per event and hook) with each of its attempts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Event(models.TextChoices):
    """What a hook can subscribe to; the value is sent in the `X-Refinery-Event` header and the payload."""

    RUN_SUCCEEDED = "run.succeeded", "Run finished (succeeded)"
    RUN_FAILED = "run.failed", "Run failed"
    RUN_CANCELLED = "run.cancelled", "Run cancelled"
    CAMPAIGN_COMPLETED = "campaign.completed", "Annotation campaign completed (every item fully judged)"


class Webhook(models.Model):
    """A URL that receives a signed JSON POST for the events it subscribes to.

    The secret is kept in clear because every delivery is signed with it (a hash could not sign);
    the pages show it once, on creation, and the admin never shows it.
    """

    class Scope(models.TextChoices):
        MINE = "mine", "My runs and campaigns"
        ALL = "all", "Every run and campaign on the site"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="webhooks", on_delete=models.CASCADE)
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    events = models.JSONField(default=list, help_text="Event values (Event) this hook receives.")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.MINE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"webhook #{self.pk} → {self.url}"

    def get_absolute_url(self) -> str:
        return reverse("webhooks:detail", args=[self.pk])

    @property
    def event_labels(self) -> list[str]:
        return [Event(value).label for value in self.events if value in Event.values]


class WebhookDelivery(models.Model):
    """One event for one hook: the payload (fixed at the event, so every retry sends the same bytes),
    where its delivery stands, and how many attempts it took.

    `subject` names what the event is about (`run:12:1` is run 12's first attempt, `campaign:4`), and
    (webhook, event, subject) is unique, so an event raised twice is delivered once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RETRYING = "retrying", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (no attempts left)"

    webhook = models.ForeignKey(Webhook, related_name="deliveries", on_delete=models.CASCADE)
    event = models.CharField(max_length=40, choices=Event.choices)
    subject = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True, help_text="HTTP status of the last attempt.")
    error = models.TextField(blank=True, help_text="Why the last attempt failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event", "subject"], name="webhooks_one_delivery_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.subject} → webhook #{self.webhook_id}"


class WebhookAttempt(models.Model):
    """One POST of a delivery: the delivery log shows one row per attempt."""

    delivery = models.ForeignKey(WebhookDelivery, related_name="attempts", on_delete=models.CASCADE)
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhooks_one_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery #{self.delivery_id}"

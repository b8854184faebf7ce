"""Runs of pipelines on the queue; the datasets they produce are `webapp.library.models.Artifact`."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from .registry import UnknownRunKind, kind_label, run_kind


class PipelineRun(models.Model):
    """One job: its validated config, where it stands, and what went wrong if it failed.

    The database, not Redis, is the source of truth: the worker writes status, progress and
    heartbeat here, so a run whose worker died can be detected and resumed.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        LOST = "lost", "Worker lost"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.LOST)

    kind = models.CharField(
        max_length=30, help_text="A kind declared in an app's kinds.py and registered in webapp.runs.registry."
    )
    name = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    queue_name = models.CharField(max_length=50, default="gpu")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.SET_NULL)
    attempt = models.PositiveIntegerField(default=1, help_text="Incremented on every resume.")
    rq_job_id = models.CharField(max_length=100, blank=True)
    worker_name = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    submission_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The key of the form POST that queued this run; the same key again queues nothing new.",
    )

    stage = models.CharField(max_length=100, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    call_progress = models.JSONField(
        default=dict,
        blank=True,
        help_text="The model call in flight: {tokens_done, tokens_budget, eta_seconds}; empty between calls.",
    )
    metrics = models.JSONField(default=list, blank=True, help_text="Time series: list of {step, name: value}.")
    summary = models.JSONField(default=dict, blank=True, help_text="Final figures of the run.")
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the current attempt was queued.")
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["submission_key"], condition=~models.Q(submission_key=""), name="run_submission_key_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name or f"{self.kind_label} #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("runs:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def kind_label(self) -> str:
        """What the kind is called on pages (from its declaration in the run-kind registry)."""
        return kind_label(self.kind)

    @property
    def is_training(self) -> bool:
        """Its jobs train a model, so the run page shows training curves."""
        try:
            return run_kind(self.kind).trains
        except UnknownRunKind:
            return False

    @property
    def run_dir_name(self) -> str:
        return f"run-{self.pk}"

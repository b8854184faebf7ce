"""Runs of pipelines on the queue, and the datasets (artifacts) they produce."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class PipelineRun(models.Model):
    """One job: its validated config, where it stands, and what went wrong if it failed.

    The database, not Redis, is the source of truth: the worker writes status, progress and
    heartbeat here, so a run whose worker died can be detected and resumed.
    """

    class Kind(models.TextChoices):
        GENERATE = "generate", "Generate answers"
        TRAIN_SFT = "train_sft", "Train: SFT"
        TRAIN_PREFERENCE = "train_preference", "Train: preference (DPO/SPIN)"
        TRAIN_REWARD = "train_reward", "Train: reward model"
        SPIN = "spin", "SPIN: self-play fine-tuning"
        AUGCON = "augcon", "AugCon: SFT data from a corpus"
        AFT_INFERENCE = "aft_inference", "AFT: propose-and-aggregate answers"
        AFT_DATA = "aft_data", "AFT: aggregation training data"
        ALMOST = "almost", "ALMoST: synthetic comparisons"
        EVALUATION = "evaluation", "Win-rate evaluation"

    TRAINING_KINDS = (Kind.TRAIN_SFT, Kind.TRAIN_PREFERENCE, Kind.TRAIN_REWARD)

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        LOST = "lost", "Worker lost"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.LOST)

    kind = models.CharField(max_length=30, choices=Kind.choices)
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
        return self.name or f"{self.get_kind_display()} #{self.pk}"

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
    def is_training(self) -> bool:
        return self.kind in self.TRAINING_KINDS

    @property
    def run_dir_name(self) -> str:
        return f"run-{self.pk}"


class Artifact(models.Model):
    """A dataset a run produced: JSONL plus parquet on disk, loadable with `datasets.load_dataset`."""

    class Kind(models.TextChoices):
        GENERATIONS = "generations", "Generations"
        QUERIES = "queries", "Queries"
        SFT = "sft", "SFT dataset"
        PROPOSALS = "proposals", "Proposals"
        COMPARISONS = "comparisons", "Comparisons"
        PREFERENCES = "preferences", "Preferences"
        JUDGMENTS = "judgments", "Judgments"
        SCORER_PAIRS = "scorer_pairs", "Scorer pairs"
        AGGREGATIONS = "aggregations", "Aggregations (proposals, layers, final answers)"

    run = models.ForeignKey(PipelineRun, related_name="artifacts", null=True, blank=True, on_delete=models.SET_NULL)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    jsonl_path = models.CharField(max_length=1000)
    parquet_path = models.CharField(max_length=1000, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="artifact_name_per_run")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("runs:artifact", args=[self.pk])

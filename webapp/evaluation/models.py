"""Win-rate evaluations (candidates against a baseline, an LLM judge, the statistics) and the answer cache."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class Evaluation(models.Model):
    """Candidates compared with a baseline on a prompt set by a judge model; its run does the work.

    `candidates` and `baseline` describe the contestants as chosen in the form (model or answer
    artifact, decoding); the run's config holds the resolved, validated pipeline config. `results`
    holds the statistics per candidate once the run has finished; the per-prompt rows are the
    `comparisons` artifact.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    run = models.OneToOneField(
        "runs.PipelineRun", null=True, blank=True, related_name="evaluation", on_delete=models.SET_NULL
    )
    candidates = models.JSONField(default=list, help_text="Contestants as chosen: kind, model or artifact id, label, decoding.")
    baseline = models.JSONField(default=dict)
    prompt_set = models.ForeignKey("library.SeedPromptSet", null=True, blank=True, on_delete=models.SET_NULL)
    imported_prompts = models.JSONField(default=list, blank=True, help_text="Prompts imported from a JSONL file.")
    prompt_source = models.CharField(max_length=300, blank=True, help_text="Where the prompts came from, for the list page.")
    judge = models.ForeignKey("registry.ModelEntry", null=True, on_delete=models.SET_NULL, related_name="judged_evaluations")
    rubric = models.ForeignKey("library.Rubric", null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True)
    results = models.JSONField(default=dict, blank=True)
    comparisons = models.ForeignKey("library.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"Evaluation #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("evaluation:detail", args=[self.pk])

    @property
    def live_status(self) -> str:
        """The run's status while it has one (a killed worker shows as lost), else the recorded one."""
        return self.run.status if self.run_id and self.run else self.status

    @property
    def candidate_labels(self) -> list[str]:
        return [candidate.get("label", "?") for candidate in self.candidates]


class CachedAnswer(models.Model):
    """One cached answer: keyed by (model, decoding config, prompt), as the pipeline's cache directory.

    The answers themselves live in the cache directory the pipeline reads; these rows record what is
    there, so the form can say how many answers an evaluation will reuse and the admin can browse them.
    """

    model_key = models.CharField(max_length=64)
    decoding_key = models.CharField(max_length=64)
    prompt_key = models.CharField(max_length=64)
    model = models.ForeignKey("registry.ModelEntry", null=True, blank=True, on_delete=models.SET_NULL)
    decoding = models.JSONField(default=dict, blank=True)
    prompt = models.TextField()
    answer = models.TextField()
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    first_evaluation = models.ForeignKey(Evaluation, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_key", "decoding_key", "prompt_key"], name="cached_answer_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.model or self.model_key[:8]}: {self.prompt[:60]}"

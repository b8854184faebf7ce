"""Human spot-checking of pairwise data: campaigns, their sampled items, leases and judgments.

Vocabulary used everywhere in this app:
- side "a" is the artifact's `chosen` (preference pairs) or `response_a` (evaluation pairs), side "b"
  its `rejected` or `response_b`; the synthetic label says which side the machine preferred;
- "left"/"right" are what an annotator saw: each item records whether side a was shown on the left,
  so a judgment is stored both as pressed (`choice`) and mapped back to the pair (`verdict`).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Verdict(models.TextChoices):
    """What a judgment (or the machine) says about a pair, in the artifact's own sides."""

    A = "a", "Side a better (chosen / response_a)"
    B = "b", "Side b better (rejected / response_b)"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


class Campaign(models.Model):
    """A researcher's request for human judgments on a sample of one pairwise artifact."""

    class PairFormat(models.TextChoices):
        PREFERENCE = "preference", "prompt / chosen / rejected (synthetic label: chosen is better)"
        EVALUATION = "evaluation", "prompt / response_a / response_b (machine label: judge_verdict)"

    class Sampling(models.TextChoices):
        RANDOM = "random", "Random"
        STRATIFIED = "stratified", "Stratified by a column (proportional, every group represented)"

    name = models.CharField(max_length=200)
    artifact = models.ForeignKey("library.Artifact", related_name="annotation_campaigns", on_delete=models.PROTECT)
    rubric = models.ForeignKey("library.Rubric", related_name="annotation_campaigns", on_delete=models.PROTECT)
    pair_format = models.CharField(max_length=20, choices=PairFormat.choices)
    flags = models.JSONField(default=list, blank=True, help_text="Flags an annotator may tick, e.g. factual error.")
    ask_comment = models.BooleanField(default=True, help_text="Offer a free-text comment box.")
    sample_size = models.PositiveIntegerField(help_text="Items requested (fewer when the artifact is smaller).")
    sampling = models.CharField(max_length=20, choices=Sampling.choices, default=Sampling.RANDOM)
    group_by = models.CharField(
        max_length=100,
        blank=True,
        help_text="Column for stratified sampling and the statistics breakdown; `config_pair` combines "
        "chosen_config/rejected_config (or model_a/model_b).",
    )
    seed = models.BigIntegerField(help_text="Seeds the sample and the side randomization, for reproducibility.")
    overlap = models.PositiveSmallIntegerField(default=2, help_text="Annotators who judge each item.")
    lease_minutes = models.PositiveIntegerField(default=20, help_text="An unjudged item returns to the pool after this.")
    assignees = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="annotation_campaigns")
    is_open = models.BooleanField(default=True, help_text="Closed campaigns hand out no more items.")
    source_row_count = models.PositiveIntegerField(default=0, help_text="Eligible rows in the artifact when sampled.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("annotation:detail", args=[self.pk])

    @property
    def has_synthetic_label(self) -> bool:
        return self.items.exclude(synthetic_label="").exists()


class Item(models.Model):
    """One sampled pair, copied from the artifact so the workspace never re-reads a large file.

    `provenance` (configurations, model names, filter verdicts) and `synthetic_label` are for the
    statistics only and must never reach an annotator's page.
    """

    campaign = models.ForeignKey(Campaign, related_name="items", on_delete=models.CASCADE)
    position = models.PositiveIntegerField(help_text="Order in which items are handed out.")
    source_line = models.PositiveIntegerField(help_text="1-based line of the pair in the artifact's JSONL.")
    prompt = models.TextField()
    response_a = models.TextField()
    response_b = models.TextField()
    a_on_left = models.BooleanField(help_text="Side a was shown on the left (randomized per item).")
    synthetic_label = models.CharField(max_length=10, choices=Verdict.choices, blank=True)
    group = models.CharField(max_length=200, blank=True, help_text="Value of the campaign's group_by column.")
    provenance = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="annotation_item_position")]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.position}"

    def verdict_for_choice(self, choice: str) -> str:
        """Map what the annotator pressed (left/right/tie/both_bad) back to the pair's sides."""
        if choice == Judgment.Choice.LEFT:
            return Verdict.A if self.a_on_left else Verdict.B
        if choice == Judgment.Choice.RIGHT:
            return Verdict.B if self.a_on_left else Verdict.A
        return choice

    @property
    def left_text(self) -> str:
        return self.response_a if self.a_on_left else self.response_b

    @property
    def right_text(self) -> str:
        return self.response_b if self.a_on_left else self.response_a


class Assignment(models.Model):
    """An annotator's hold on one item: a lease until `expires_at`, or for good once judged.

    A slot of the item's overlap is taken by an assignment that is completed or whose lease has
    not expired; an expired, uncompleted one frees its slot (the abandoned item returns to the pool).
    """

    item = models.ForeignKey(Item, related_name="assignments", on_delete=models.CASCADE)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="annotation_assignments", on_delete=models.CASCADE)
    leased_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="annotation_one_assignment")]
        indexes = [models.Index(fields=["annotator", "completed_at"])]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.item_id}"

    @staticmethod
    def holding_slot(now) -> Q:  # type: ignore[no-untyped-def]
        """Assignments that count against an item's overlap at `now`."""
        return Q(completed_at__isnull=False) | Q(expires_at__gt=now)


class Judgment(models.Model):
    """One annotator's answer on one item; undo withdraws it (kept, with the time) instead of deleting."""

    class Choice(models.TextChoices):
        LEFT = "left", "Left (A) better"
        RIGHT = "right", "Right (B) better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both bad"

    item = models.ForeignKey(Item, related_name="judgments", on_delete=models.CASCADE)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="annotation_judgments", on_delete=models.CASCADE)
    choice = models.CharField(max_length=10, choices=Choice.choices, help_text="What was pressed, as displayed.")
    verdict = models.CharField(max_length=10, choices=Verdict.choices, help_text="The choice in the pair's sides.")
    flags = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    seconds_spent = models.FloatField(default=0)
    submission_key = models.CharField(max_length=64, unique=True, help_text="Makes a repeated submit a no-op.")
    created_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True, help_text="Set by undo; withdrawn judgments are history.")

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"], condition=Q(withdrawn_at__isnull=True), name="annotation_one_current_judgment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} on {self.item_id}: {self.verdict}"

"""The inputs every method starts from: corpora, seed prompts, few-shot examples, rubrics, and the
datasets (artifacts) that runs produce and imports add, which training and judging read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse


class ImportStatus(models.TextChoices):
    """Where an imported set stands: filled batch by batch while STAGING, shown everywhere once READY."""

    STAGING = "staging", "Importing"
    READY = "ready", "Ready"


class ReadyManager(models.Manager):
    """The default manager of imported sets: only READY ones, so a set still being imported (or one
    left behind by an import that died) is invisible to every page, form and selector."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(status=ImportStatus.READY)


class EveryImportManager(models.Manager):
    """Staged and ready sets alike: for the import services, which create and finish staged sets."""


class ImportedSet(models.Model):
    """A set whose rows an import commits in batches: staged until the last batch, then made ready.

    `objects` (the default manager) sees READY sets only; `all_objects` sees staged ones too and is
    for the import services alone. Related lookups (`run.corpus`) use the plain base manager.
    """

    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.READY, db_index=True, editable=False
    )

    objects = ReadyManager()
    all_objects = EveryImportManager()

    class Meta:
        abstract = True


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Corpus(ImportedSet, TimeStamped):
    """A named collection of documents, imported from one or more uploads."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the documents came from.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    document_count = models.PositiveIntegerField(default=0)
    character_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("library:corpus-detail", args=[self.pk])


class Document(models.Model):
    corpus = models.ForeignKey(Corpus, related_name="documents", on_delete=models.CASCADE)
    position = models.PositiveIntegerField(help_text="Order within the corpus, from 0.")
    title = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    source = models.CharField(max_length=500, blank=True, help_text="File and line it came from.")
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["corpus", "position"]
        constraints = [models.UniqueConstraint(fields=["corpus", "position"], name="document_position_unique")]

    def __str__(self) -> str:
        return self.title or f"document {self.position}"


class SeedPromptSet(ImportedSet, TimeStamped):
    """Seed prompts as ALMoST's seed file holds them: an optional instruction, then one prompt each."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    instruction = models.TextField(blank=True, help_text="The optional '### Instruction:' line.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    prompt_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("library:seedset-detail", args=[self.pk])


class SeedPrompt(models.Model):
    prompt_set = models.ForeignKey(SeedPromptSet, related_name="prompts", on_delete=models.CASCADE)
    position = models.PositiveIntegerField()
    text = models.TextField()
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["prompt_set", "position"]
        constraints = [models.UniqueConstraint(fields=["prompt_set", "position"], name="seed_prompt_position_unique")]

    def __str__(self) -> str:
        return self.text[:80]


class FewShotSet(ImportedSet, TimeStamped):
    """Examples shown to a model in its prompt: QA triples (AugCon) or demonstration dialogues (ALMoST)."""

    class Kind(models.TextChoices):
        QA = "qa", "Question answering (context, question, answer)"
        DEMONSTRATION = "demonstration", "Demonstration prompt (dialogues)"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.QA)
    description = models.TextField(blank=True)
    preamble = models.TextField(
        blank=True, help_text="Text that comes before the examples (a demonstration prompt's preamble)."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    example_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("library:fewshot-detail", args=[self.pk])


class FewShotExample(models.Model):
    """One example: a QA triple, or for demonstration sets one whole dialogue held in `context`."""

    few_shot_set = models.ForeignKey(FewShotSet, related_name="examples", on_delete=models.CASCADE)
    position = models.PositiveIntegerField()
    context = models.TextField(blank=True, help_text="The passage of a QA example, or the dialogue of a demonstration.")
    question = models.TextField(blank=True)
    answer = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["few_shot_set", "position"]
        constraints = [models.UniqueConstraint(fields=["few_shot_set", "position"], name="few_shot_position_unique")]

    def __str__(self) -> str:
        return (self.question or self.context)[:80]


class Rubric(TimeStamped):
    """Judging criteria and guidelines, plus (for ALMoST) response configurations in quality order."""

    name = models.CharField(max_length=200, unique=True)
    criteria = models.TextField(blank=True, help_text="What makes one response better than another.")
    guidelines = models.TextField(blank=True, help_text="Shown to annotators and LLM judges.")
    configurations = models.JSONField(
        default=list, blank=True, help_text="Ordered list, best first, of response configurations."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("library:rubric-detail", args=[self.pk])


class Artifact(models.Model):
    """A dataset: JSONL plus parquet on disk, loadable with `datasets.load_dataset`.

    Runs produce them (`run` set) and the library imports them (`run` empty). It lives here, not in
    `runs`, so the library can use it without importing `runs` (which imports the library); the table
    keeps its first name, `runs_artifact`, from when it lived there.
    """

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

    run = models.ForeignKey(
        "runs.PipelineRun", related_name="artifacts", null=True, blank=True, on_delete=models.SET_NULL
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    jsonl_path = models.CharField(max_length=1000)
    parquet_path = models.CharField(max_length=1000, blank=True)
    row_count = models.PositiveIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True)
    preview = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Lineage of a curated artifact (webapp/library/curation.py): the artifact it was saved from, who
    # saved it, and what changed (parent's name and id, dropped and flagged row indices of the parent,
    # edited values by row and column), kept in `curation` so the record survives the parent's deletion.
    parent = models.ForeignKey(
        "self", related_name="curated_children", null=True, blank=True, on_delete=models.SET_NULL
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    curation = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "runs_artifact"
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="artifact_name_per_run")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("runs:artifact", args=[self.pk])

    def download_name(self, file_format: str) -> str:
        """The file name a download is saved under (run-3-answers.jsonl): the server's path means nothing to
        whoever downloads it, so the page's load line names this file instead."""
        return f"{self.run.run_dir_name if self.run else 'artifact'}-{self.name}.{file_format}"

    @property
    def jsonl_download_name(self) -> str:
        return self.download_name("jsonl")


class CurationDraft(models.Model):
    """One user's curation in progress on one artifact, kept on the server so a reload loses nothing.

    Row indices count the artifact's non-blank JSONL lines from 0. The artifact itself is never
    changed: "Save as new artifact" writes a new one from the parent's rows and this draft.
    """

    artifact = models.ForeignKey(Artifact, related_name="curation_drafts", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="curation_drafts", on_delete=models.CASCADE)
    dropped_rows = models.JSONField(default=list, blank=True, help_text="Sorted indices of rows left out.")
    flagged_rows = models.JSONField(default=list, blank=True, help_text="Sorted indices of rows marked for review.")
    edited_values = models.JSONField(
        default=dict, blank=True, help_text='New text by row index and column: {"3": {"response": "..."}}.'
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["artifact", "user"], name="curation_draft_per_user")]

    def __str__(self) -> str:
        return f"{self.user} on {self.artifact}"

    @property
    def is_empty(self) -> bool:
        return not (self.dropped_rows or self.flagged_rows or self.edited_values)

"""Reads for library pages: overview counts, lists, and the document search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.functions import Substr

from .models import Corpus, Document, FewShotSet, Rubric, SeedPromptSet


@dataclass(frozen=True)
class LibraryOverview:
    """How many of each kind of library item there are, for the library's front page."""

    corpus_count: int
    document_count: int
    seed_prompt_set_count: int
    seed_prompt_count: int
    few_shot_set_count: int
    few_shot_example_count: int
    rubric_count: int
    recent_corpora: list[Corpus]
    recent_seed_prompt_sets: list[SeedPromptSet]
    recent_few_shot_sets: list[FewShotSet]
    recent_rubrics: list[Rubric]
    dataset_count: int


def library_overview(*, recent: int = 5) -> LibraryOverview:
    corpora = Corpus.objects.all()
    seed_sets = SeedPromptSet.objects.all()
    few_shot_sets = FewShotSet.objects.all()
    return LibraryOverview(
        corpus_count=corpora.count(),
        document_count=sum(corpora.values_list("document_count", flat=True)),
        seed_prompt_set_count=seed_sets.count(),
        seed_prompt_count=sum(seed_sets.values_list("prompt_count", flat=True)),
        few_shot_set_count=few_shot_sets.count(),
        few_shot_example_count=sum(few_shot_sets.values_list("example_count", flat=True)),
        rubric_count=Rubric.objects.count(),
        recent_corpora=list(corpora.order_by("-created_at")[:recent]),
        recent_seed_prompt_sets=list(seed_sets.order_by("-created_at")[:recent]),
        recent_few_shot_sets=list(few_shot_sets.order_by("-created_at")[:recent]),
        recent_rubrics=list(Rubric.objects.order_by("-updated_at")[:recent]),
        dataset_count=dataset_list().count(),
    )


def corpus_list() -> QuerySet[Corpus]:
    return Corpus.objects.select_related("created_by").order_by("name")


def document_search(*, corpus: Corpus, query: str = "") -> QuerySet[Document]:
    """The corpus's documents in order; with a query, those whose title or text contains it (any case)."""
    # Rows show an excerpt; whole texts (possibly megabytes each) stay in the database.
    documents = (
        Document.objects.filter(corpus=corpus)
        .annotate(excerpt=Substr("text", 1, 300))
        .defer("text", "meta")
        .order_by("position")
    )
    query = query.strip()
    if query:
        documents = documents.filter(Q(title__icontains=query) | Q(text__icontains=query))
    return documents


def seed_prompt_set_list() -> QuerySet[SeedPromptSet]:
    return SeedPromptSet.objects.select_related("created_by").order_by("name")


def few_shot_set_list() -> QuerySet[FewShotSet]:
    return FewShotSet.objects.select_related("created_by").order_by("name")


def rubric_list() -> QuerySet[Rubric]:
    return Rubric.objects.select_related("created_by").order_by("name")


def dataset_list() -> QuerySet[Any]:
    """Every dataset a trainer could use: imported ones and those runs produced, newest first."""
    from webapp.runs.models import Artifact

    return Artifact.objects.select_related("run").order_by("-created_at")

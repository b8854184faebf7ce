"""Reads for library pages: overview counts, lists, and the document search."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.db.models.functions import Length, Substr

from .models import Artifact, Corpus, Document, FewShotSet, ImportStatus, Rubric, SeedPromptSet


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


DOCUMENT_EXCERPT_CHARACTERS = 20_000
DOCUMENT_DOWNLOAD_PIECE_CHARACTERS = 1 << 20


def document_pages() -> QuerySet[Document]:
    """Documents of ready corpora, each with its first DOCUMENT_EXCERPT_CHARACTERS as `excerpt` and its
    length as `character_count`; the whole text is deferred, so a page never loads a whole document."""
    return (
        Document.objects.filter(corpus__status=ImportStatus.READY)
        .select_related("corpus")
        .annotate(excerpt=Substr("text", 1, DOCUMENT_EXCERPT_CHARACTERS), character_count=Length("text"))
        .defer("text")
    )


def document_neighbour(document: Document, *, before: bool) -> Document | None:
    """The document just before (or after) this one in its corpus, with only what a link needs."""
    neighbours = Document.objects.filter(corpus_id=document.corpus_id).only("pk", "position")
    if before:
        return neighbours.filter(position__lt=document.position).order_by("-position").first()
    return neighbours.filter(position__gt=document.position).order_by("position").first()


def document_text_pieces(
    document: Document, *, piece_characters: int = DOCUMENT_DOWNLOAD_PIECE_CHARACTERS
) -> Iterator[str]:
    """A document's whole text in consecutive slices read one query each, for a streamed download."""
    start = 1
    while True:
        piece = (
            Document.objects.filter(pk=document.pk)
            .annotate(piece=Substr("text", start, piece_characters))
            .values_list("piece", flat=True)
            .first()
        )
        if not piece:
            return
        yield piece
        if len(piece) < piece_characters:
            return
        start += piece_characters


def seed_prompt_set_list() -> QuerySet[SeedPromptSet]:
    return SeedPromptSet.objects.select_related("created_by").order_by("name")


def few_shot_set_list() -> QuerySet[FewShotSet]:
    return FewShotSet.objects.select_related("created_by").order_by("name")


def rubric_list() -> QuerySet[Rubric]:
    return Rubric.objects.select_related("created_by").order_by("name")


def dataset_list() -> QuerySet[Artifact]:
    """Every dataset a trainer could use: imported ones and those runs produced, newest first."""
    return Artifact.objects.select_related("run").order_by("-created_at")

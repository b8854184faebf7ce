"""What a run form's dropdowns offer: only the datasets and library sets it can use, each with its size.

Why: a dropdown of every artifact invites a choice the service then refuses (a comparisons file for
SFT, generations for a campaign). The fit rules are the ones the services enforce, read from where
they live (training's `DATASET_LAYOUTS`, the evaluation's answer fields, the annotation pair formats),
so the dropdown and the refusal cannot disagree. A dropdown with nothing to offer says why and
where to make one (`templates/partials/_form_field.html`).

    dataset = DatasetChoiceField(shape="sft", help_text="...")
    corpus = CountedChoiceField(queryset=Corpus.objects.all(), count="document_count", unit="document", ...)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import Any

from django import forms
from django.db.models import Model, Q, QuerySet
from django.urls import reverse

from pipelines.evaluation.answers import ANSWER_FIELDS, PROMPT_FIELDS
from pipelines.training.layouts import DATASET_LAYOUTS
from webapp.annotation.pairs import TEXT_FIELDS as PAIR_FIELDS
from webapp.library.models import Artifact, SeedPromptSet
from webapp.registry.models import ModelEntry


@dataclass(frozen=True)
class DatasetShape:
    """A use of a dataset: the column sets that fit it (any one of them, all its columns), and where to get one."""

    description: str
    layouts: tuple[tuple[str, ...], ...]
    make_hint: str
    make_url_name: str


def _layouts(*groups: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    return tuple(dict.fromkeys(layout for group in groups for layout in group))


DATASET_SHAPES: dict[str, DatasetShape] = {
    "sft": DatasetShape(
        "SFT-shaped (prompt and response, chat messages, or question and answer)",
        _layouts(DATASET_LAYOUTS["sft"]),
        "import one, or make one with AugCon, AFT's aggregation data or generate",
        "library:dataset-upload",
    ),
    "preference": DatasetShape(
        "preference-shaped (prompt, chosen, rejected, or SPIN's real and generated)",
        _layouts(DATASET_LAYOUTS["preference"]),
        "import preference pairs, or make them with ALMoST or SPIN",
        "library:dataset-upload",
    ),
    "reward": DatasetShape(
        "reward data (prompt, chosen, rejected)",
        _layouts(DATASET_LAYOUTS["reward"]),
        "import comparisons, or make them with ALMoST",
        "library:dataset-upload",
    ),
    "training": DatasetShape(
        "trainable (SFT or preference-shaped)",
        _layouts(DATASET_LAYOUTS["sft"], DATASET_LAYOUTS["preference"], DATASET_LAYOUTS["reward"]),
        "import one, or make one with AugCon, ALMoST, SPIN or generate",
        "library:dataset-upload",
    ),
    "pairs": DatasetShape(
        "pairwise (prompt, chosen, rejected, or prompt, response_a, response_b)",
        _layouts(list(PAIR_FIELDS.values())),
        "make pairs with ALMoST or SPIN, or import preference pairs",
        "library:dataset-upload",
    ),
    "answers": DatasetShape(
        "answers (a prompt column and an answer column)",
        _layouts(list(itertools.product(PROMPT_FIELDS, ANSWER_FIELDS))),
        "answer a prompt set with generate or AFT",
        "generate:new",
    ),
    # pipelines/aft/data.py `response_groups` reads these layouts (several responses per prompt).
    "response_groups": DatasetShape(
        "several responses per prompt",
        (
            ("prompt", "responses"),
            ("prompt", "proposals"),
            ("chosen", "rejected"),
            ("real", "generated"),
            ("prompt", "completions"),
            ("instruction", "completions"),
        ),
        "answer a prompt set with generate (n above 1), or import preference pairs",
        "generate:new",
    ),
}


def dataset_fits(shape: str, columns: Sequence[str]) -> bool:
    """Whether a dataset with `columns` fits the use `shape` (one of DATASET_SHAPES)."""
    present = set(columns)
    return any(present.issuperset(layout) for layout in DATASET_SHAPES[shape].layouts)


def datasets_of_shape(shape: str) -> QuerySet[Artifact]:
    """The artifacts whose columns fit `shape`, newest first (one query: the columns are JSON lists)."""
    fits = reduce(or_, (Q(columns__contains=list(layout)) for layout in DATASET_SHAPES[shape].layouts))
    return Artifact.objects.filter(fits).select_related("run").order_by("-created_at")


def artifact_label(artifact: Artifact) -> str:
    """ "augcon-qa (run 12) — 340 rows": what it is, where it came from, how big it is."""
    origin = f"run {artifact.run_id}" if artifact.run_id else "imported"
    rows = "row" if artifact.row_count == 1 else "rows"
    return f"{artifact.name} ({origin}) — {artifact.row_count:,} {rows}"


class EmptyChoiceHint:
    """What an empty dropdown says: why it is empty and a link to where to make a choice."""

    empty_text: str = ""
    empty_url_name: str = ""
    queryset: QuerySet[Any]

    def empty_reason(self) -> str:
        """ "" when there is something to choose; else the sentence the page shows under the field."""
        return "" if self.queryset.exists() else self.empty_text

    def empty_url(self) -> str:
        return reverse(self.empty_url_name) if self.empty_url_name else ""


class ShapeTaggedSelect(forms.Select):
    """A dataset select whose options say which uses they fit (`data-fits="sft"`), and which field picks the use.

    Why: training's dropdown holds SFT and preference data and its trainer field picks between them;
    the page's script (static/js/dataset_fit.js) hides the options the chosen trainer cannot use, by
    the same rule the service checks.
    """

    def __init__(self, *, follows: str, uses: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uses = tuple(uses)
        self.attrs["data-fit-follows"] = follows

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)
        instance = getattr(option["value"], "instance", None)
        if instance is not None:
            fits = [use for use in self.uses if dataset_fits(use, instance.columns)]
            option["attrs"]["data-fits"] = " ".join(fits)
        return option


class DatasetChoiceField(EmptyChoiceHint, forms.ModelChoiceField):
    """A dataset dropdown offering only the artifacts of one shape, labelled with origin and row count.

    `follows=("trainer", ("sft", "preference", "reward"))`: another field of the form picks which of
    these uses applies, and the page offers only the datasets that fit its current choice.
    """

    def __init__(self, *, shape: str, follows: tuple[str, Sequence[str]] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", datasets_of_shape(shape))
        if follows is not None:
            kwargs.setdefault("widget", ShapeTaggedSelect(follows=follows[0], uses=follows[1]))
        super().__init__(**kwargs)
        self.shape = shape
        self.empty_text = f"No {DATASET_SHAPES[shape].description} dataset yet: {DATASET_SHAPES[shape].make_hint}."
        self.empty_url_name = DATASET_SHAPES[shape].make_url_name

    def label_from_instance(self, obj: Model) -> str:
        return artifact_label(obj)  # type: ignore[arg-type]


class DatasetMultipleChoiceField(EmptyChoiceHint, forms.ModelMultipleChoiceField):
    """The several-choice twin of `DatasetChoiceField`."""

    def __init__(self, *, shape: str, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", datasets_of_shape(shape))
        super().__init__(**kwargs)
        self.shape = shape
        self.empty_text = f"No {DATASET_SHAPES[shape].description} dataset yet: {DATASET_SHAPES[shape].make_hint}."
        self.empty_url_name = DATASET_SHAPES[shape].make_url_name

    def label_from_instance(self, obj: Model) -> str:
        return artifact_label(obj)  # type: ignore[arg-type]


class CountedChoiceField(EmptyChoiceHint, forms.ModelChoiceField):
    """A library-set dropdown whose labels give the set's size: "wiki-sample — 12 documents"."""

    def __init__(self, *, count: str, unit: str, empty_text: str, empty_url_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count, self.unit = count, unit
        self.empty_text, self.empty_url_name = empty_text, empty_url_name

    def label_from_instance(self, obj: Model) -> str:
        size = getattr(obj, self.count)
        return f"{obj} — {size:,} {self.unit}{'' if size == 1 else 's'}"


def prompt_set_choice_field(**kwargs: Any) -> CountedChoiceField:
    """The seed-prompt-set dropdown every prompt-answering form shares: "questions — 40 prompts"."""
    return CountedChoiceField(
        queryset=SeedPromptSet.objects.all(),
        count="prompt_count",
        unit="prompt",
        empty_text="No prompt set yet: upload one.",
        empty_url_name="library:seedset-upload",
        **kwargs,
    )


def generation_models() -> QuerySet[ModelEntry]:
    """Models that write text (any backend): the ones a method prompts or a judge uses."""
    return ModelEntry.objects.filter(task=ModelEntry.Task.GENERATION)


def local_generation_models() -> QuerySet[ModelEntry]:
    """Text-generation models with weights on this deployment (not a remote endpoint): what AugCon's scorer
    starts from (`webapp.augcon.services.check_scorer_model` refuses the rest by the same rule)."""
    return generation_models().exclude(backend=ModelEntry.Backend.OPENAI).exclude(source=ModelEntry.Source.ENDPOINT)


def trainable_models() -> QuerySet[ModelEntry]:
    """Text-generation models with local transformers weights: what a trainer can load
    (`webapp.training.services.check_trainable` refuses the rest by the same rule)."""
    return (
        generation_models().filter(backend=ModelEntry.Backend.TRANSFORMERS).exclude(source=ModelEntry.Source.ENDPOINT)
    )


class ModelEntryChoiceField(EmptyChoiceHint, forms.ModelChoiceField):
    """A registered-model dropdown that, when empty, says so and links to registering one."""

    empty_text = "No registered model fits here yet: register one (local weights or an OpenAI-compatible endpoint)."
    empty_url_name = "registry:list"


class ModelEntryMultipleChoiceField(EmptyChoiceHint, forms.ModelMultipleChoiceField):
    """The several-choice twin of `ModelEntryChoiceField`."""

    empty_text = ModelEntryChoiceField.empty_text
    empty_url_name = ModelEntryChoiceField.empty_url_name

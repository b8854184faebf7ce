"""AugCon runs: turn the form's choices into a validated config, estimate its cost, and queue it.

Everything is checked here, in the web process and before anything is queued, with the pipeline's
own config class (it imports no torch): the documents exist, the few-shot set is a QA set with an
example that can show a split, the scorer has local weights to train, every setting is in range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from pipelines.augcon.budget import Budget, estimate_budget
from pipelines.augcon.config import AUGCON_PRESETS, AugConConfig
from pipelines.augcon.corpus import chunk_text, cst_demonstrations, few_shot_row, normalise, paragraphs
from pipelines.common.config_docs import config_field_docs
from pipelines.common.presets import preset_choices, preset_named
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs
from webapp.core.run_forms import EstimateWarning
from webapp.library.models import Corpus, FewShotSet
from webapp.registry.models import ModelEntry

MAX_DOCUMENTS = 100_000
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_positions(text: str) -> list[int]:
    """ "0-9, 12, 15-16" -> sorted unique positions; blank -> []; a bad part is named."""
    positions: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _RANGE.match(part)
        if match is None:
            raise ValidationError({"documents": f"“{part.strip()}” is not a position or a range like 0-9."})
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise ValidationError({"documents": f"Range “{part.strip()}” ends before it starts."})
        if last - first > MAX_DOCUMENTS:
            raise ValidationError({"documents": f"Range “{part.strip()}” is longer than {MAX_DOCUMENTS} documents."})
        positions.update(range(first, last + 1))
    return sorted(positions)


def select_positions(*, corpus: Corpus, documents: str, max_documents: int | None) -> list[int]:
    """The corpus positions a run will use: the listed ones (or all), the first `max_documents` of them."""
    available = list(corpus.documents.order_by("position").values_list("position", flat=True))
    if not available:
        raise ValidationError({"corpus": f"Corpus “{corpus.name}” has no documents."})
    wanted = parse_positions(documents)
    if wanted:
        present = set(available)
        missing = [position for position in wanted if position not in present]
        if missing:
            shown = ", ".join(str(position) for position in missing[:5])
            raise ValidationError(
                {
                    "documents": f"Corpus “{corpus.name}” has no document at position {shown} "
                    f"(positions run from {available[0]} to {available[-1]})."
                }
            )
        chosen = wanted
    else:
        chosen = available
    if max_documents:
        chosen = chosen[:max_documents]
    return chosen


def check_scorer_model(model: ModelEntry, field: str) -> None:
    """The scorer is trained in the worker: it needs local transformers weights of a generation model."""
    if model.backend == ModelEntry.Backend.OPENAI or model.source == ModelEntry.Source.ENDPOINT:
        raise ValidationError(
            {
                field: f"{model.name} is a remote endpoint; the scorer trains LoRA on local weights. "
                "Choose a scorer model with local transformers weights."
            }
        )
    if model.task != ModelEntry.Task.GENERATION:
        raise ValidationError({field: f"{model.name} is a reward model; the scorer starts from a language model."})


def check_scorer_backbone(config: AugConConfig) -> None:
    """Refuse a QLoRA scorer (the paper's 4-bit NF4 base) where no worker can load it, before anything is queued.

    bitsandbytes' 4-bit base needs a CUDA GPU. The web process never imports torch to ask, and the gpu
    queue's workers may be other hosts, so the deployment says whether they have both: REFINERY_GPU_WORKERS.
    """
    if not config.scorer.qlora:
        return
    if config.scorer.device == "cpu":
        raise ValidationError(
            {
                "scorer_qlora": "The QLoRA backbone loads the scorer's base in 4 bits on a CUDA GPU; the scorer's "
                "device is cpu. Set the scorer device to cuda or auto, or untick the QLoRA backbone."
            }
        )
    if not settings.REFINERY_GPU_WORKERS:
        raise ValidationError(
            {
                "scorer_qlora": "The QLoRA backbone needs a worker with a CUDA GPU and bitsandbytes, and this "
                "deployment declares none (REFINERY_GPU_WORKERS is not 1). Untick it to train the scorer's LoRA over a "
                "full-precision base (the run summary states the difference from the paper), or set "
                "REFINERY_GPU_WORKERS=1 where the gpu queue's workers have both."
            }
        )


def few_shot_examples(few_shot_set: FewShotSet) -> list[dict[str, Any]]:
    """The set's examples as the pipeline reads them: what the form checks and the worker snapshots."""
    return [
        few_shot_row(example.context, example.question, example.answer, example.meta)
        for example in few_shot_set.examples.order_by("position")
    ]


def augcon_settings(*, preset: str = "", overrides: dict[str, Any] | None = None) -> AugConConfig:
    """Layers, later wins: the paper's defaults, the preset, the form's fields (`scorer` merged by key).

    A setting out of range raises the config's `InvalidConfigError` naming its field; the scorer's
    training fields are the form's `scorer_<name>` fields.
    """
    config = AugConConfig()
    if preset:
        config = preset_named(AUGCON_PRESETS, preset).apply(config)
    values = dict(overrides or {})
    scorer_values = values.pop("scorer", None) or {}
    if scorer_values:
        scorer = config.scorer.to_dict()
        for key, value in scorer_values.items():
            scorer[key] = (
                {**scorer[key], **value} if isinstance(value, dict) and isinstance(scorer.get(key), dict) else value
            )
        try:
            config = replace(config, scorer=TrainingArgs.from_dict(scorer))
        except InvalidConfigError as error:
            raise InvalidConfigError(
                f"scorer: {error}", field=f"scorer_{error.field}" if error.field else None
            ) from error
    return AugConConfig.from_dict({**config.to_dict(), **values})


def augcon_config_build(
    *,
    model: ModelEntry,
    corpus: Corpus,
    few_shot_set: FewShotSet,
    scorer_model: ModelEntry | None = None,
    documents: str = "",
    max_documents: int | None = None,
    preset: str = "",
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run config for an AugCon job, or a ValidationError naming the field that is wrong."""
    config = augcon_settings(preset=preset, overrides=overrides)
    if few_shot_set.kind != FewShotSet.Kind.QA:
        raise ValidationError(
            {
                "few_shot_set": f"“{few_shot_set.name}” is a demonstration prompt; AugCon needs a QA set (context, question, answer)."
            }
        )
    examples = few_shot_examples(few_shot_set)
    if not examples:
        raise ValidationError({"few_shot_set": f"“{few_shot_set.name}” has no examples."})
    for position, example in enumerate(examples):
        for name in ("context", "question", "answer"):
            if not example[name].strip():
                raise ValidationError(
                    {"few_shot_set": f"“{few_shot_set.name}”, example {position}: `{name}` is empty."}
                )
    if config.cst_demonstrations and not cst_demonstrations(examples, config.cst_demonstrations):
        raise ValidationError(
            {
                "few_shot_set": f"No example of “{few_shot_set.name}” has a context of two or more sentences to show "
                "as a split; add one or give examples context_1/context_2 in their meta."
            }
        )
    check_scorer_model(scorer_model or model, "scorer_model" if scorer_model else "model")
    check_scorer_backbone(config)
    positions = select_positions(corpus=corpus, documents=documents, max_documents=max_documents)
    skipped = documents_without_chunks(corpus=corpus, positions=positions, config=config)
    if len(skipped) == len(positions):
        raise ValidationError(
            {"min_paragraph_length": f"The run would make nothing: {skipped_documents_text(skipped, config)}"}
        )
    return {
        "model_id": model.pk,
        "scorer_model_id": scorer_model.pk if scorer_model else None,
        "corpus_id": corpus.pk,
        "document_positions": positions,
        "few_shot_set_id": few_shot_set.pk,
        "preset": preset,
        "augcon": config.to_dict(),
    }


@dataclass(frozen=True)
class SkippedDocument:
    """A chosen document that gives no root chunk, so no question: every paragraph is too short."""

    position: int
    title: str
    longest_paragraph: int
    """Characters of its longest paragraph, as the chunker measures it (whitespace normalised)."""


def documents_without_chunks(*, corpus: Corpus, positions: list[int], config: AugConConfig) -> list[SkippedDocument]:
    """The chosen documents the chunker leaves out whole (no paragraph longer than the minimum), in order.

    Why: a document without a root chunk gets no question; when every document is left out the run
    would fail after queueing, so the form refuses it, and names the skipped ones when only some are.
    """
    skipped = []
    for position, title, text in (
        corpus.documents.filter(position__in=positions).order_by("position").values_list("position", "title", "text")
    ):
        if chunk_text(text, max_length=config.chunk_characters, min_paragraph_length=config.paragraph_characters):
            continue
        longest = max((len(normalise(paragraph)) for paragraph in paragraphs(text)), default=0)
        skipped.append(SkippedDocument(position, title, longest))
    return skipped


def skipped_documents_text(skipped: list[SkippedDocument], config: AugConConfig) -> str:
    """ "document 0 “Intro” (longest paragraph 84 characters) ... is left out: ...", naming at most five."""
    named = "; ".join(
        f"document {document.position}{f' “{document.title}”' if document.title else ''} "
        f"(longest paragraph {document.longest_paragraph} characters)"
        for document in skipped[:5]
    )
    more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    verb = "is" if len(skipped) == 1 else "are"
    return (
        f"{named}{more} {verb} left out whole: a paragraph must be longer than {config.paragraph_characters} characters "
        f"(min_paragraph_length {config.min_paragraph_length} × length_scale {config.length_scale:g}). Lower the "
        "minimum paragraph length or choose longer documents."
    )


def augcon_warnings(config: dict[str, Any]) -> list[EstimateWarning]:
    """What the estimate should say before queueing: the chosen documents that give no question, and why."""
    corpus = Corpus.objects.get(pk=config["corpus_id"])
    augcon = AugConConfig.from_dict(config["augcon"])
    skipped = documents_without_chunks(corpus=corpus, positions=config["document_positions"], config=augcon)
    if not skipped:
        return []
    kept = len(config["document_positions"]) - len(skipped)
    return [
        EstimateWarning(
            f"{len(skipped)} of {len(config['document_positions'])} documents give no question ({kept} kept): "
            + skipped_documents_text(skipped, augcon)
        )
    ]


def augcon_budget(config: dict[str, Any]) -> Budget:
    """The prompt budget (calls, tokens) a built config implies, from the chosen documents' texts."""
    corpus = Corpus.objects.get(pk=config["corpus_id"])
    texts = list(
        corpus.documents.filter(position__in=config["document_positions"])
        .order_by("position")
        .values_list("text", flat=True)
    )
    examples = few_shot_examples(FewShotSet.objects.get(pk=config["few_shot_set_id"]))
    return estimate_budget(AugConConfig.from_dict(config["augcon"]), texts, examples)


def defaults_table() -> list[dict[str, Any]]:
    """The paper's defaults, one row per setting, with what each does."""
    defaults = AugConConfig().to_dict()
    docs = config_field_docs(AugConConfig)
    rows = [
        {"name": name, "default": value, "help": docs.get(name, "")}
        for name, value in defaults.items()
        if name != "scorer"
    ]
    scorer = AugConConfig().scorer
    rows.append(
        {
            "name": "scorer",
            "default": (
                f"lr {scorer.learning_rate}, {scorer.num_epochs:g} epochs, batch {scorer.per_device_batch_size}, "
                f"warmup {scorer.trainer_overrides.get('warmup_steps')} steps, weight decay {scorer.weight_decay}, "
                f"LoRA r {scorer.lora.r} alpha {scorer.lora.alpha} dropout {scorer.lora.dropout} {scorer.lora.target_modules}"
            ),
            "help": docs.get("scorer", ""),
        }
    )
    return rows


def preset_table() -> list[dict[str, str]]:
    return [{"name": name, "description": description} for name, description in preset_choices(AUGCON_PRESETS)]

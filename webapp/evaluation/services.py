"""Evaluations: validate the form's choices into a pipeline config, queue the run, record what it produced.

Everything is checked before anything is queued, through the pipeline's own config classes, so a
worker never meets a config it would refuse; a refusal names the field and changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.errors import InvalidConfigError
from pipelines.evaluation.answers import ANSWER_FIELDS, PROMPT_FIELDS, prompt_of
from pipelines.evaluation.config import Contestant, EvaluationConfig, decoding_cache_key, prompt_cache_key
from pipelines.evaluation.human import annotation_pairs
from pipelines.evaluation.judge import DEFAULT_CRITERIA, JUDGE_METHODS, JudgeConfig
from pipelines.llm.types import SamplingParams
from webapp.library.models import Artifact, Rubric, SeedPromptSet
from webapp.library.parsers.reading import ImportProblem, jsonl_objects
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

from .models import CachedAnswer, Evaluation

MAX_IMPORTED_PROMPTS = 5000
MAX_PROMPT_FILE_BYTES = 20 * 1024 * 1024


def answer_cache_dir() -> Path:
    """The answer cache, beside the artifacts so every worker sharing ARTIFACT_ROOT shares it."""
    return Path(settings.ARTIFACT_ROOT) / "answer-cache"


# --- prompts ---------------------------------------------------------------------------------------


def parse_imported_prompts(path: Path, *, file_name: str) -> list[str]:
    """Prompts from an uploaded JSONL file on disk: one object per line with a prompt field (AlpacaEval's
    `instruction` works).

    Read with the library's JSONL reader, as every other import is: a line at a time, a file over
    MAX_PROMPT_FILE_BYTES refused before any of it is read, a UTF-8 byte order mark accepted, a NUL
    character refused, and every problem named by file and line.
    """
    prompts: list[str] = []
    expected = "a prompt field (" + ", ".join(PROMPT_FIELDS) + ")"
    try:
        for line_number, row in jsonl_objects(
            Path(path),
            file_name,
            expected,
            MAX_PROMPT_FILE_BYTES,
            None,
            max_line_bytes=settings.LIBRARY_MAX_DOCUMENT_BYTES,
        ):
            prompt = prompt_of(row)
            if prompt is None:
                raise ImportProblem(
                    file_name, line_number, None, f"no prompt; give one of the fields {', '.join(PROMPT_FIELDS)}"
                )
            prompts.append(prompt)
            if len(prompts) > MAX_IMPORTED_PROMPTS:
                raise ImportProblem(file_name, None, None, f"more than {MAX_IMPORTED_PROMPTS} prompts; split the file")
    except ImportProblem as problem:
        raise ValidationError({"prompts_file": str(problem)}) from None
    if not prompts:
        raise ValidationError({"prompts_file": f"{file_name}: the file is empty: no prompts found"})
    return prompts


def evaluation_prompts(evaluation: Evaluation) -> list[str]:
    """The prompt texts an evaluation runs on, in order."""
    if evaluation.imported_prompts:
        return list(evaluation.imported_prompts)
    if evaluation.prompt_set_id is None:
        return []
    return list(evaluation.prompt_set.prompts.order_by("position").values_list("text", flat=True))


# --- config ----------------------------------------------------------------------------------------


def contestant_for_model(
    model: ModelEntry,
    *,
    contestant_id: str,
    temperature: float,
    max_tokens: int,
    top_p: float = 1.0,
    seed: int | None = 0,
) -> tuple[Contestant, dict[str, Any]]:
    """A model with its decoding config as a pipeline contestant, and the description kept on the Evaluation."""
    if model.task != ModelEntry.Task.GENERATION:
        raise ValidationError(f"{model.name} is a reward model; it cannot answer prompts.")
    try:
        sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    except InvalidConfigError as error:
        raise ValidationError(f"{model.name}: {error}.") from error
    label = f"{model.name} (T={temperature:g})"
    key = f"model:{model.pk}:{decoding_cache_key(sampling)[:12]}"
    contestant = Contestant(
        contestant_id, label, kind="model", backend_spec=model.backend_spec(), sampling=sampling, leaderboard_key=key
    )
    description = {
        "kind": "model",
        "model_id": model.pk,
        "label": label,
        "leaderboard_key": key,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "top_p": top_p,
        "seed": seed,
    }
    return contestant, description


def contestant_for_artifact(artifact: Artifact, *, contestant_id: str, field: str) -> tuple[Contestant, dict[str, Any]]:
    """An artifact of existing answers as a contestant; it needs a prompt and an answer column."""
    columns = set(artifact.columns or [])
    if not columns & set(PROMPT_FIELDS) or not columns & set(ANSWER_FIELDS):
        raise ValidationError(
            {
                field: f"Artifact “{artifact.name}” has columns {', '.join(sorted(columns)) or '(none)'}; answers need a prompt "
                f"column ({', '.join(PROMPT_FIELDS)}) and an answer column ({', '.join(ANSWER_FIELDS)})."
            }
        )
    if not Path(artifact.jsonl_path).is_file():
        raise ValidationError({field: f"Artifact “{artifact.name}”: its file {artifact.jsonl_path} is missing."})
    label = f"{artifact.name} (artifact #{artifact.pk})"
    key = f"artifact:{artifact.pk}"
    contestant = Contestant(contestant_id, label, kind="answers", answers_path=artifact.jsonl_path, leaderboard_key=key)
    return contestant, {"kind": "answers", "artifact_id": artifact.pk, "label": label, "leaderboard_key": key}


def evaluation_config_build(
    *,
    candidate_models: list[ModelEntry],
    candidate_artifacts: list[Artifact],
    baseline_model: ModelEntry | None,
    baseline_artifact: Artifact | None,
    judge: ModelEntry,
    rubric: Rubric | None = None,
    max_tokens: int = 256,
    candidate_temperature: float = 0.7,
    baseline_temperature: float = 0.7,
    seed: int | None = 0,
    judge_max_tokens: int = 16,
    judge_temperature: float = 0.0,
    judge_retries: int = 2,
    bootstrap_rounds: int = 2000,
    judge_method: str = "logprob",
    judge_constrained_output: bool = True,
) -> tuple[EvaluationConfig, list[dict[str, Any]], dict[str, Any]]:
    """The pipeline config plus the contestant descriptions, or a ValidationError naming the field.

    `judge_method`: `logprob` reads the verdict from the judge's next-token probabilities (every
    backend kind gives them; an OpenAI-compatible server that does not stops the run with a message
    naming it), `text` generates a reply and parses it.
    """
    if judge_method not in JUDGE_METHODS:
        raise ValidationError(
            {"judge_method": f"Judge method must be one of {', '.join(JUDGE_METHODS)}, not {judge_method!r}."}
        )
    if not candidate_models and not candidate_artifacts:
        raise ValidationError({"candidate_models": "Choose at least one candidate: a model or an answers artifact."})
    if (baseline_model is None) == (baseline_artifact is None):
        raise ValidationError({"baseline_model": "Choose exactly one baseline: a model or an answers artifact."})
    if judge.task != ModelEntry.Task.GENERATION:
        raise ValidationError({"judge": f"{judge.name} is a reward model; the judge must be a text-generation model."})

    candidates: list[Contestant] = []
    descriptions: list[dict[str, Any]] = []
    for model in candidate_models:
        try:
            contestant, description = contestant_for_model(
                model,
                contestant_id=f"c{len(candidates)}",
                temperature=candidate_temperature,
                max_tokens=max_tokens,
                seed=seed,
            )
        except ValidationError as error:
            raise ValidationError({"candidate_models": error.messages}) from error
        candidates.append(contestant)
        descriptions.append(description)
    for artifact in candidate_artifacts:
        contestant, description = contestant_for_artifact(
            artifact, contestant_id=f"c{len(candidates)}", field="candidate_artifacts"
        )
        candidates.append(contestant)
        descriptions.append(description)
    if baseline_model is not None:
        try:
            baseline, baseline_description = contestant_for_model(
                baseline_model,
                contestant_id="baseline",
                temperature=baseline_temperature,
                max_tokens=max_tokens,
                seed=seed,
            )
        except ValidationError as error:
            raise ValidationError({"baseline_model": error.messages}) from error
    else:
        baseline, baseline_description = contestant_for_artifact(
            baseline_artifact, contestant_id="baseline", field="baseline_artifact"
        )  # type: ignore[arg-type]
    same = [c.label for c in candidates if c.leaderboard_key == baseline.leaderboard_key]
    if same:
        raise ValidationError(
            {
                "baseline_model": f"{same[0]} is both a candidate and the baseline with the same decoding; "
                "change a temperature or choose another baseline."
            }
        )

    criteria = DEFAULT_CRITERIA
    if rubric is not None:
        criteria = (
            "\n\n".join(part.strip() for part in (rubric.criteria, rubric.guidelines) if part.strip())
            or DEFAULT_CRITERIA
        )
    try:
        judge_config = JudgeConfig(
            criteria=criteria,
            sampling=SamplingParams(temperature=judge_temperature, max_tokens=judge_max_tokens, seed=seed),
            retries=judge_retries,
            method=judge_method,  # type: ignore[arg-type]
            constrained_output=judge_constrained_output,
        )
        config = EvaluationConfig(
            candidates=tuple(candidates),
            baseline=baseline,
            judge_spec=judge.backend_spec(),
            judge=judge_config,
            bootstrap_rounds=bootstrap_rounds,
            seed=seed or 0,
        )
    except InvalidConfigError as error:
        # A setting the config names goes beside the form's field of that name (add_validation_error
        # puts one the form does not have on top).
        raise ValidationError({error.field or NON_FIELD_ERRORS: f"Invalid evaluation settings: {error}."}) from error
    return config, descriptions, baseline_description


@transaction.atomic
def evaluation_create_from_form(
    *,
    user: Any,
    data: dict[str, Any],
    imported_prompts: list[str],
    prompt_source: str,
    cloned_from: PipelineRun | None = None,
) -> Evaluation:
    """Build the config from `EvaluationForm`'s cleaned data and queue the evaluation.

    The page and the JSON API both create evaluations through this, so the form's fields map to the
    service's arguments in one place. Raises ValidationError naming the form field at fault.
    """
    config, candidates, baseline = evaluation_config_build(
        candidate_models=list(data["candidate_models"]),
        candidate_artifacts=list(data["candidate_artifacts"]),
        baseline_model=data.get("baseline_model"),
        baseline_artifact=data.get("baseline_artifact"),
        judge=data["judge"],
        rubric=data.get("rubric"),
        max_tokens=data["max_tokens"],
        candidate_temperature=data["candidate_temperature"],
        baseline_temperature=data["baseline_temperature"],
        seed=data.get("seed"),
        judge_max_tokens=data["judge_max_tokens"],
        judge_retries=data["judge_retries"],
        bootstrap_rounds=data["bootstrap_rounds"],
        judge_method=data["judge_method"],
        judge_constrained_output=data["judge_constrained_output"],
    )
    return evaluation_create(
        user=user,
        config=config,
        candidates=candidates,
        baseline=baseline,
        judge=data["judge"],
        prompt_set=data.get("prompt_set"),
        imported_prompts=imported_prompts,
        prompt_source=prompt_source,
        rubric=data.get("rubric"),
        name=data["name"],
        cloned_from=cloned_from,
    )


def evaluation_create(
    *,
    user: Any,
    config: EvaluationConfig,
    candidates: list[dict[str, Any]],
    baseline: dict[str, Any],
    judge: ModelEntry,
    prompt_set: SeedPromptSet | None = None,
    imported_prompts: list[str] | None = None,
    prompt_source: str = "",
    rubric: Rubric | None = None,
    name: str = "",
    cloned_from: PipelineRun | None = None,
) -> Evaluation:
    """Save the evaluation and queue its run (on the gpu queue: answering and judging load models).

    `cloned_from`: the run whose settings the form started from (Clone and edit), noted on the new run.
    """
    if (prompt_set is None) == (not imported_prompts):
        raise ValidationError({"prompt_set": "Choose a prompt set or import a JSONL file of prompts (one of the two)."})
    if prompt_set is not None and not prompt_set.prompts.exists():
        raise ValidationError({"prompt_set": f"Prompt set “{prompt_set.name}” has no prompts."})
    evaluation = Evaluation(
        name=name,
        created_by=user,
        candidates=candidates,
        baseline=baseline,
        prompt_set=prompt_set,
        imported_prompts=list(imported_prompts or []),
        prompt_source=prompt_source or (prompt_set.name if prompt_set else ""),
        judge=judge,
        rubric=rubric,
    )
    evaluation.full_clean()
    evaluation.save()
    run = run_services.run_create(
        user=user,
        kind="evaluation",
        config={"evaluation_id": evaluation.pk, "evaluation": config.to_dict()},
        name=name or f"Evaluation #{evaluation.pk}",
        cloned_from=cloned_from,
    )
    evaluation.run = run
    evaluation.save(update_fields=["run"])
    return evaluation


def cached_answer_count(*, config: EvaluationConfig, prompts: list[str]) -> dict[str, int]:
    """How many of each model contestant's answers are already cached (the form's preview)."""
    keys = {prompt_cache_key(prompt) for prompt in prompts}
    counts: dict[str, int] = {}
    for contestant in config.contestants:
        if contestant.kind != "model":
            continue
        counts[contestant.label] = CachedAnswer.objects.filter(
            model_key=contestant.model_key, decoding_key=contestant.decoding_key, prompt_key__in=keys
        ).count()
    return counts


# --- what the worker records -------------------------------------------------------------------------


def evaluation_set_status(*, evaluation_id: int, status: str) -> None:
    """Set the Evaluation's status (the worker's running / failed / cancelled); a finished one gets its end time."""
    fields: dict[str, Any] = {"status": status}
    if status in (Evaluation.Status.SUCCEEDED, Evaluation.Status.FAILED, Evaluation.Status.CANCELLED):
        fields["finished_at"] = timezone.now()
    Evaluation.objects.filter(pk=evaluation_id).update(**fields)


def evaluation_record_results(*, evaluation: Evaluation, results: dict[str, Any], comparisons: Artifact) -> Evaluation:
    evaluation.results = results
    evaluation.comparisons = comparisons
    evaluation.status = Evaluation.Status.SUCCEEDED
    evaluation.finished_at = timezone.now()
    evaluation.save(update_fields=["results", "comparisons", "status", "finished_at"])
    return evaluation


def cached_answers_record(
    *, evaluation: Evaluation, answer_rows: list[dict[str, Any]], description: dict[str, Any]
) -> int:
    """Mirror a model contestant's answers into the CachedAnswer table; existing keys are left alone."""
    rows = [row for row in answer_rows if row.get("model_key")]
    if not rows:
        return 0
    model_id = description.get("model_id")
    decoding = {key: description.get(key) for key in ("temperature", "max_tokens", "top_p", "seed")}
    created = CachedAnswer.objects.bulk_create(
        [
            CachedAnswer(
                model_key=row["model_key"],
                decoding_key=row["decoding_key"],
                prompt_key=prompt_cache_key(row["prompt"]),
                model_id=model_id if ModelEntry.objects.filter(pk=model_id).exists() else None,
                decoding=decoding,
                prompt=row["prompt"],
                answer=row["answer"],
                completion_tokens=row.get("completion_tokens"),
                first_evaluation=evaluation,
            )
            for row in rows
        ],
        ignore_conflicts=True,
    )
    return len(created)


def reference_preferences_for(evaluation: Evaluation) -> dict[str, list[float]]:
    """Other models' per-prompt preferences against the same baseline by the same judge (instruction difficulty).

    Only finished evaluations count, and only candidates other than this evaluation's own, so a
    model's instruction difficulty is never estimated from its own judgments.
    """
    baseline_key = evaluation.baseline.get("leaderboard_key")
    own_keys = {candidate.get("leaderboard_key") for candidate in evaluation.candidates}
    preferences: dict[str, list[float]] = {}
    others = Evaluation.objects.filter(
        status=Evaluation.Status.SUCCEEDED, judge=evaluation.judge, comparisons__isnull=False
    ).exclude(pk=evaluation.pk)
    for other in others.select_related("comparisons"):
        if other.baseline.get("leaderboard_key") != baseline_key:
            continue
        path = Path(other.comparisons.jsonl_path)
        if not path.is_file():
            continue
        for row in read_jsonl_rows(path):
            if row.get("preference") is None or row.get("candidate_key") in own_keys:
                continue
            preferences.setdefault(row["prompt"], []).append(float(row["preference"]))
    return preferences


# --- human judging ------------------------------------------------------------------------------


def evaluation_pairs_artifact(*, evaluation: Evaluation) -> Artifact:
    """The evaluation's pairs as an artifact an annotation campaign is made from (human judging).

    Rows: prompt, response_a (candidate), response_b (baseline), model_a, model_b, judge_verdict
    (the LLM judge's verdict over both orders: A, B, tie or null), plus judge_preference, prompt_id
    and candidate_id to join human judgments back to the LLM judge's. The annotation app randomizes
    sides and hides model names, and reports how often `judge_verdict` (the LLM judge) matches the
    human majority.
    """
    if evaluation.comparisons is None:
        raise ValidationError(
            f"Evaluation #{evaluation.pk} has no results yet; human judging starts from finished pairs."
        )
    source = Path(evaluation.comparisons.jsonl_path)
    rows = list(read_jsonl_rows(source))
    target = source.parent / "human_judging_pairs.jsonl"
    from pipelines.common.store import RunStore

    RunStore(target.parent).write_jsonl(annotation_pairs(rows), target.name)
    return run_services.artifact_register(
        run=evaluation.run, name="human-judging-pairs", kind=Artifact.Kind.COMPARISONS, jsonl_path=target
    )


def human_judging_summaries(*, evaluation: Evaluation) -> list[dict[str, Any]]:
    """Each human campaign over this evaluation's pairs, with how often the LLM judge agreed with the humans."""
    from webapp.annotation.models import Campaign
    from webapp.annotation.selectors import campaign_statistics

    if evaluation.run_id is None:
        return []
    campaigns = Campaign.objects.filter(artifact__run_id=evaluation.run_id, artifact__name="human-judging-pairs")
    summaries = []
    for campaign in campaigns.order_by("-pk"):
        statistics = campaign_statistics(campaign=campaign)
        summaries.append(
            {
                "campaign": campaign,
                "judged_items": statistics["judged_items"],
                "items": statistics["items"],
                "judge_agreement": statistics["synthetic"],
                "human_verdicts": statistics["human_verdicts"],
            }
        )
    return summaries

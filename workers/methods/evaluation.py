"""Run kind `evaluation`: snapshot the prompts, answer and judge through the pipeline, record the results."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.evaluation import EvaluationConfig, run_evaluation
from pipelines.evaluation.run import PROMPTS_FILE
from webapp.library.models import Artifact
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage


def handle(run: PipelineRun, progress: Progress) -> None:
    """Evaluate; a resumed attempt reuses every finished answer and judge batch in the run directory."""
    from webapp.evaluation import services
    from webapp.evaluation.models import Evaluation

    evaluation = Evaluation.objects.get(pk=run.config["evaluation_id"])
    services.evaluation_mark(evaluation_id=evaluation.pk, status=Evaluation.Status.RUNNING)
    config = EvaluationConfig.from_dict(run.config["evaluation"])
    store = RunStore(run_services.run_directory(run))
    if not store.exists(PROMPTS_FILE):
        prompts = services.evaluation_prompts(evaluation)
        store.write_jsonl(
            ({"prompt_id": f"p{index:06d}", "prompt": text} for index, text in enumerate(prompts)), PROMPTS_FILE
        )
    try:
        result = run_evaluation(
            config,
            store,
            progress,
            backend_for=_backend_loader(run, progress),
            cache_dir=services.answer_cache_dir(),
            reference_preferences=services.reference_preferences_for(evaluation),
        )
    except RunCancelled:
        services.evaluation_mark(evaluation_id=evaluation.pk, status=Evaluation.Status.CANCELLED)
        raise
    except run_services.AttemptFenced:
        raise  # a superseded attempt writes nothing, not even the evaluation's status (webapp/runs/services.py)
    except BaseException:
        services.evaluation_mark(evaluation_id=evaluation.pk, status=Evaluation.Status.FAILED)
        raise

    comparisons = retry_through_outage(
        lambda: run_services.artifact_register(
            run=run, name="comparisons", kind=Artifact.Kind.JUDGMENTS, jsonl_path=result.comparisons_path
        )
    )
    descriptions = {f"c{index}": description for index, description in enumerate(evaluation.candidates)}
    descriptions["baseline"] = evaluation.baseline
    cached = 0
    for contestant in config.contestants:
        if contestant.kind == "model":
            rows = list(store.read_jsonl(f"answers/{contestant.contestant_id}.jsonl"))
            cached += services.cached_answers_record(
                evaluation=evaluation, answer_rows=rows, description=descriptions.get(contestant.contestant_id, {})
            )
    services.evaluation_record_results(evaluation=evaluation, results=result.results, comparisons=comparisons)
    summary: dict[str, Any] = {
        "prompts": result.results["prompts"],
        "answers_generated": result.answers_generated,
        "answers_reused": result.answers_reused,
        "judgments_made_this_attempt": result.judgments_made,
        "cached_answers_recorded": cached,
        "evaluation_seconds": round(result.seconds, 2),
    }
    for statistics in result.results["candidates"].values():
        label = statistics["label"]
        summary[f"{label}: win rate"] = statistics["win_rate"]["win_rate"]
        summary[f"{label}: LC win rate"] = statistics["length_controlled"]["win_rate"]
        summary[f"{label}: LC bootstrap standard error"] = statistics["length_controlled"]["standard_error"]
        summary[f"{label}: judge method"] = statistics["judge_method"]
        summary[f"{label}: parse failures"] = f"{statistics['parse_failures']} of {statistics['judgments']}"
        summary[f"{label}: prompts read in one order only"] = statistics["single_order_prompts"]
        bias = statistics["position_bias"]
        if bias["same_position_share"] is not None:
            summary[f"{label}: same position chosen"] = (
                f"{bias['same_position_share']:.0%} {bias['favoured']} of {bias['decided']} decided judgments"
                + (f" (position bias: above {bias['threshold']:.0%})" if bias["warning"] else "")
            )
    retry_through_outage(lambda: run_services.run_update_summary(run_id=run.pk, values=summary))


def _backend_loader(run: PipelineRun, progress: Progress):  # type: ignore[no-untyped-def]
    """Load models through the worker's process cache (the last model stays warm), logging each load."""
    from pipelines.llm.factory import get_backend

    def backend_for(spec: dict[str, Any]):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        backend, was_cached = get_backend(spec, model_cache_dir=Path(settings.MODEL_CACHE_DIR))
        seconds = round(time.monotonic() - started, 2)
        progress.log(f"model {backend.name} {'reused from memory' if was_cached else 'loaded'} in {seconds}s")
        return backend

    return backend_for

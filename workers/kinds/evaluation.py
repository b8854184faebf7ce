"""Evaluation runs: snapshot the prompts, answer and judge through the pipeline, record the results on the Evaluation.

An evaluation is more than its run: the Evaluation row (the form's choices, its status, the
statistics the result page and the leaderboard read) and the answer cache table are the site's.
So beyond what every kind registers (the comparisons artifact, the summary), this kind marks the
Evaluation running / failed / cancelled and, at the end, records its results and mirrors the
model contestants' answers into the cache table.
"""

from __future__ import annotations

from pipelines.common.prompts import numbered_prompts, write_prompts
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.evaluation import EvaluationConfig, EvaluationInputs, run_evaluation
from pipelines.evaluation.inspect import contestant_answer_rows, evaluation_results
from webapp.evaluation import services
from webapp.evaluation.models import Evaluation
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from workers.database import retry_through_outage
from workers.runner import PreparedJob, Registered


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    """Mark the Evaluation running; a resumed attempt reuses every finished answer and judge batch on disk."""
    evaluation = Evaluation.objects.get(pk=run.config["evaluation_id"])
    services.evaluation_set_status(evaluation_id=evaluation.pk, status=Evaluation.Status.RUNNING)
    config = EvaluationConfig.from_dict(run.config["evaluation"])
    write_prompts(store, numbered_prompts(services.evaluation_prompts(evaluation)))

    def after(result: PipelineResult, registered: Registered) -> None:
        record_results(run=run, evaluation=evaluation, config=config, store=store, registered=registered)

    def on_stopped(status: str) -> None:
        services.evaluation_set_status(evaluation_id=evaluation.pk, status=Evaluation.Status(status))

    return PreparedJob(
        pipeline=run_evaluation,
        config=config,
        inputs=EvaluationInputs(
            answer_cache_dir=services.answer_cache_dir(),
            reference_preferences=services.reference_preferences_for(evaluation),
        ),
        after=after,
        on_stopped=on_stopped,
    )


def record_results(
    *, run: PipelineRun, evaluation: Evaluation, config: EvaluationConfig, store: RunStore, registered: Registered
) -> None:
    """Mirror the model contestants' answers into the cache table, then put the statistics on the Evaluation."""
    descriptions = {f"c{index}": description for index, description in enumerate(evaluation.candidates)}
    descriptions["baseline"] = evaluation.baseline
    cached = 0
    for contestant in config.contestants:
        if contestant.kind == "model":
            cached += services.cached_answers_record(
                evaluation=evaluation,
                answer_rows=contestant_answer_rows(store, contestant.contestant_id),
                description=descriptions.get(contestant.contestant_id, {}),
            )
    services.evaluation_record_results(
        evaluation=evaluation, results=evaluation_results(store) or {}, comparisons=registered.artifacts["comparisons"]
    )
    retry_through_outage(
        lambda: run_services.run_update_summary(run_id=run.pk, values={"cached_answers_recorded": cached})
    )

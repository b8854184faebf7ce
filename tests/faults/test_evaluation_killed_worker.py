"""An evaluation whose worker is SIGKILLed at a random judge batch, resumed: the same comparisons as an uninterrupted one.

The tiny random model answers and judges (seeded per batch), so its verdicts are noise but repeatable.
The uninterrupted evaluation runs first and caches the answers, so the killed one spends its time in
the judge stage. The worker is stepped (support.py `step_worker_until`) to a random number of finished
judge batches plus a random number of slices into the next one, so the kill lands mid-judging on any
machine; the kill point is printed for a replay.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.faults.support import kill_after_batches, prompt_set_of, resume_once_lost, tiny_model_entry
from tests.fixtures.runs import wait_for_run
from webapp.evaluation import services
from webapp.evaluation.selectors import evaluation_rows
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 12
JUDGE_BATCH_SIZE = 1
JUDGE_BATCHES = 2 * PROMPTS // JUDGE_BATCH_SIZE  # both orders of every prompt


def comparison_keys(rows: list[dict]) -> list[tuple]:
    """What must match: one row per (candidate, prompt), with its verdicts."""
    return [(row["candidate_id"], row["prompt_id"], row["preference"], row["unparsed_orders"]) for row in rows]


def test_an_evaluation_worker_killed_at_a_random_judge_batch_resumes_to_the_uninterrupted_result(
    rq_worker, researcher, tiny_model_dir
):
    model = tiny_model_entry(tiny_model_dir)
    prompt_set = prompt_set_of(PROMPTS)
    config, candidates, baseline_description = services.evaluation_config_build(
        candidate_models=[model],
        candidate_artifacts=[],
        baseline_model=model,
        baseline_artifact=None,
        judge=model,
        max_tokens=4,
        candidate_temperature=1.0,
        baseline_temperature=0.0,
        seed=1,
        judge_max_tokens=4,
        judge_retries=0,
        bootstrap_rounds=100,
        judge_method="text",
    )
    config = dataclasses.replace(config, judge_batch_size=JUDGE_BATCH_SIZE)

    def evaluate(name: str):  # type: ignore[no-untyped-def]
        return services.evaluation_create(
            user=researcher,
            config=config,
            candidates=candidates,
            baseline=baseline_description,
            judge=model,
            prompt_set=prompt_set,
            name=name,
        )

    first_worker = rq_worker()
    reference = evaluate("uninterrupted")
    reference_run = wait_for_run(reference.run, timeout=240)
    assert reference_run.status == PipelineRun.Status.SUCCEEDED, reference_run.error + first_worker.log_text()[-3000:]
    reference.refresh_from_db()
    reference_rows = list(evaluation_rows(reference))
    assert len(reference_rows) == PROMPTS

    first_worker.pause()  # before the job is queued: the run cannot get ahead of the stepping
    evaluation = evaluate("killed")
    run = evaluation.run
    judgments = run_services.run_directory(run) / "judgments"
    finished_before_kill, kill_point = kill_after_batches(first_worker, run, judgments, total_batches=JUDGE_BATCHES)
    run, _worker = resume_once_lost(run, rq_worker, kill_point, lost_within=90, finish_within=240)

    assert run.status == PipelineRun.Status.SUCCEEDED, f"{kill_point}: {run.error}\n{run.traceback}"
    evaluation.refresh_from_db()
    rows = list(evaluation_rows(evaluation))
    assert comparison_keys(rows) == comparison_keys(reference_rows), kill_point
    assert len({(row["candidate_id"], row["prompt_id"]) for row in rows}) == PROMPTS, f"duplicate rows ({kill_point})"
    for path, mtime in finished_before_kill.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was judged twice ({kill_point})"
    assert len(list(judgments.rglob("batch-*.jsonl"))) == JUDGE_BATCHES
    statistics, reference_statistics = evaluation.results["candidates"]["c0"], reference.results["candidates"]["c0"]
    assert statistics["judgments"] == reference_statistics["judgments"] == 2 * PROMPTS, kill_point

"""An evaluation whose worker is SIGKILLed at a random judge batch, resumed: the same comparisons as an uninterrupted one.

The tiny random model answers and judges (seeded per batch), so its verdicts are noise but repeatable.
The uninterrupted evaluation runs first and caches the answers, so the killed one spends its time in
the judge stage, where the kill lands after a random number of batches plus a random delay.
"""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from tests.faults.support import prompt_set_of, tiny_model_entry
from tests.fixtures.runs import wait_for_run
from webapp.evaluation import services
from webapp.evaluation.selectors import evaluation_rows
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 6
JUDGE_BATCH_SIZE = 2
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

    chooser = random.Random()
    batches_before_kill = chooser.randint(1, JUDGE_BATCHES - 2)
    delay_into_next_batch = round(chooser.uniform(0.0, 0.3), 2)
    kill_point = f"killed after {batches_before_kill} judge batches + {delay_into_next_batch} s"
    evaluation = evaluate("killed")
    run = wait_for_run(
        evaluation.run,
        lambda r: r.stage.startswith("judge") and r.progress_done >= batches_before_kill * JUDGE_BATCH_SIZE,
        240,
        f"{batches_before_kill} judge batches",
    )
    time.sleep(delay_into_next_batch)
    first_worker.kill()
    judgments = run_services.run_directory(run) / "judgments"
    finished_before_kill = {path: path.stat().st_mtime_ns for path in judgments.rglob("batch-*.jsonl")}
    assert finished_before_kill, kill_point

    run = wait_for_run(run, lambda r: r.status == PipelineRun.Status.LOST, 90, f"the run to be lost ({kill_point})")
    rq_worker()
    run_services.run_resume(run=run)
    run = wait_for_run(run, timeout=240, what=f"the resumed evaluation to finish ({kill_point})")

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

"""An AFT inference run whose worker is SIGKILLed at a random point, resumed: the same artifact as an uninterrupted run.

AFT's seed derives one seed per batch and layer, so a resumed run must not only answer every prompt
once but draw the same text an uninterrupted run draws. The worker is stepped (support.py
`step_worker_until`) to a random number of finished batches plus a random number of slices into
the next one, so the kill lands mid-run on any machine; the kill point is printed for a replay.
"""

from __future__ import annotations

import pytest

from pipelines.aft import AftConfig
from tests.faults.support import (
    artifact_rows,
    assert_every_prompt_once,
    kill_after_batches,
    prompt_set_of,
    resume_once_lost,
    tiny_model_entry,
)
from tests.fixtures.runs import wait_for_run
from webapp.aft import services as aft_services
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 24
BATCH_SIZE = 1
AFT_SETTINGS = {
    "proposal_params": {"n": 2, "max_tokens": 6},
    "aggregation_params": {"n": 2, "max_tokens": 6},
    "hidden_layer": 1,
    "batch_size": BATCH_SIZE,
    "seed": 7,
}


def test_aft_worker_killed_at_a_random_point_resumes_to_the_uninterrupted_artifact(
    rq_worker, researcher, tiny_model_dir
):
    model = tiny_model_entry(tiny_model_dir)
    prompt_set = prompt_set_of(PROMPTS)
    config = aft_services.inference_config_build(
        model=model, prompt_set=prompt_set, aft=AftConfig.from_dict(AFT_SETTINGS)
    )
    first_worker = rq_worker()

    reference = wait_for_run(run_services.run_create(kind="aft_inference", user=researcher, config=config), timeout=240)
    assert reference.status == PipelineRun.Status.SUCCEEDED, reference.error + first_worker.log_text()[-3000:]
    reference_rows = artifact_rows(reference, "aggregations")
    assert_every_prompt_once(reference_rows, PROMPTS)

    first_worker.pause()  # before the job is queued: the run cannot get ahead of the stepping
    run = run_services.run_create(kind="aft_inference", user=researcher, config=config)
    batch_dir = run_services.run_directory(run) / "batches"
    finished_before_kill, kill_point = kill_after_batches(
        first_worker, run, batch_dir, total_batches=PROMPTS // BATCH_SIZE
    )
    run, _worker = resume_once_lost(run, rq_worker, kill_point, lost_within=90, finish_within=240)

    assert run.status == PipelineRun.Status.SUCCEEDED, f"{kill_point}: {run.error}\n{run.traceback}"
    rows = artifact_rows(run, "aggregations")
    assert_every_prompt_once(rows, PROMPTS)
    assert run.artifacts.get().row_count == reference.artifacts.get().row_count == PROMPTS
    for path, mtime in finished_before_kill.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was answered twice ({kill_point})"
    assert run.summary["batches_generated_this_attempt"] == PROMPTS // BATCH_SIZE - len(finished_before_kill)
    assert [row["final_answer"] for row in rows] == [row["final_answer"] for row in reference_rows], (
        f"the resumed run drew other text than the uninterrupted one ({kill_point})"
    )
    assert [row["proposals"] for row in rows] == [row["proposals"] for row in reference_rows], kill_point

"""A SPIN run whose worker is SIGKILLed at a random point, resumed: the same artifacts as an uninterrupted run.

SPIN writes one file per finished generation batch of each iteration, training checkpoints and a summary per
finished iteration. The test waits for the k-th of those files (k drawn from the first iteration, seeded and
printed so a failure can be replayed with REFINERY_FAULT_SEED), SIGSTOPs the worker at once so it
cannot finish in between, SIGKILLs it, lets the site mark the run lost, resumes it on a fresh worker
and compares with an uninterrupted run of the same config: the same pairs, once each, the same
generated text (generation is seeded per batch and iteration), nothing finished regenerated, and one
registry entry per iteration.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.faults.kill_points import fault_seed, file_times, pause_when_file_appears
from tests.faults.support import artifact_rows, resume_once_lost, tiny_model_entry
from tests.fixtures.runs import wait_for_run
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.spin import services

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = 6
ITERATIONS = 2
TRAINING_STEPS = 2


def finished_files(prompt_count: int, iterations: int, training_steps: int) -> list[str]:
    """The files a SPIN run finishes, in the order it finishes them (run-directory relative).

    Generation batches, the training checkpoints (renamed into place whole), the iteration summary.
    """
    names: list[str] = []
    for iteration in range(iterations):
        names += [f"iter-{iteration}/generate/batches/batch-{index:06d}.jsonl" for index in range(prompt_count)]
        names += [f"iter-{iteration}/train/checkpoints/checkpoint-{step}" for step in range(1, training_steps)]
        names.append(f"iter-{iteration}/summary.json")
    return names


def sft_dataset(root: Path) -> Artifact:
    path = root / "qa.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps({"prompt": f"Question {i}?", "response": f"Answer {i}."}) + "\n" for i in range(PROMPTS))
    )
    return run_services.artifact_register(run=None, name="qa", kind=Artifact.Kind.SFT, jsonl_path=path)


def assert_pairs_once(rows: list[dict[str, Any]], what: str) -> None:
    ids = [row["prompt_id"] for row in rows]
    duplicates = sorted({prompt_id for prompt_id in ids if ids.count(prompt_id) > 1})
    assert not duplicates, f"{what}: prompts paired more than once: {duplicates}"
    assert ids == [f"p{index:06d}" for index in range(PROMPTS)], f"{what}: {len(ids)} rows, ids {ids}"


def test_spin_worker_killed_at_a_random_point_resumes_to_the_uninterrupted_artifacts(
    live_settings, rq_worker, researcher, tiny_model_dir
):
    base = tiny_model_entry(tiny_model_dir)
    config = services.spin_config_build(
        model=base,
        dataset=sft_dataset(Path(live_settings.ARTIFACT_ROOT)),
        preset="tiny-cpu-demo",
        iterations=ITERATIONS,
        max_new_tokens=6,
        training_overrides={"max_steps": TRAINING_STEPS, "save_steps": 1, "torch_threads": 1},
    )
    config["spin"]["generation_batch_size"] = 1  # one file per prompt: many points to be killed at
    first_worker = rq_worker()

    reference = run_services.run_create(kind="spin", user=researcher, config=config, name="uninterrupted")
    reference = wait_for_run(reference, timeout=120, what="the uninterrupted SPIN run")
    assert reference.status == PipelineRun.Status.SUCCEEDED, reference.error + first_worker.log_text()[-3000:]

    seed = fault_seed()
    files = finished_files(PROMPTS, ITERATIONS, TRAINING_STEPS)
    # Any file of the first iteration: the second iteration's generation and training are always left.
    kill_after = random.Random(seed).randint(1, PROMPTS + TRAINING_STEPS)
    kill_point = f"REFINERY_FAULT_SEED={seed}: killed once {files[kill_after - 1]} (file {kill_after}) was written"
    print(kill_point)

    run = run_services.run_create(kind="spin", user=researcher, config=config, name="killed")
    run_directory = run_services.run_directory(run)
    run = pause_when_file_appears(run, first_worker, run_directory / files[kill_after - 1], 120, kill_point)
    first_worker.kill()
    assert run.is_active, f"the run finished before the kill ({kill_point})"
    assert not (run_directory / files[-1]).exists(), f"the last iteration finished before the kill ({kill_point})"
    # Checkpoints are rotated away as training goes on: the files that must never be written twice are the rest.
    written = file_times(run_directory, [name for name in files if "/checkpoints/" not in name])

    run, second_worker = resume_once_lost(run, rq_worker, kill_point, lost_within=60, finish_within=120)
    assert run.status == PipelineRun.Status.SUCCEEDED, (
        f"{kill_point}: {run.error}\n{run.traceback}\n{second_worker.log_text()[-3000:]}"
    )

    if "/checkpoints/" in files[kill_after - 1]:
        assert "resumed from step 1 of" in run.log_tail, f"training started over ({kill_point}):\n{run.log_tail}"
    for name, mtime in written.items():
        assert (run_directory / name).stat().st_mtime_ns == mtime, f"{name} was written again ({kill_point})"
    for iteration in range(ITERATIONS):
        name = f"pairs-iter{iteration}"
        rows, reference_rows = artifact_rows(run, name), artifact_rows(reference, name)
        assert_pairs_once(rows, f"{name} ({kill_point})")
        assert run.artifacts.get(name=name).row_count == reference.artifacts.get(name=name).row_count == PROMPTS
        assert rows == reference_rows, (
            f"{name}: the resumed run drew other text than the uninterrupted one ({kill_point})"
        )
    entries = list(ModelEntry.objects.filter(produced_by_run=run).order_by("created_at"))
    assert [entry.name for entry in entries] == [f"tiny → SPIN iter{i} #{run.pk}" for i in range(ITERATIONS)], (
        kill_point
    )
    assert (entries[0].parent, entries[1].parent) == (base, entries[0]), kill_point
    assert [row["iteration"] for row in run.summary["iterations"]] == list(range(ITERATIONS)), kill_point
    assert [row["train_pairs"] for row in run.summary["iterations"]] == [
        row["train_pairs"] for row in reference.summary["iterations"]
    ], kill_point

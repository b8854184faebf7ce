"""Progress that tells the truth: the whole run's fraction across its stages, queue positions, who runs what."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pipelines.common.progress import RecordingProgress
from pipelines.common.progress_plan import PlannedStage, whole_run_progress
from pipelines.spin.config import SpinConfig
from pipelines.spin.stages import spin_stages
from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.runs import selectors, services
from webapp.runs.models import PipelineRun
from webapp.runs.registry import all_run_kinds


def _reported(plan: list[PlannedStage], totals: dict[str, int]) -> list[tuple[str, int, int]]:
    """What a pipeline going through `plan` reports: each stage from 0 to its total, one item at a time."""
    progress = RecordingProgress()
    reports: list[tuple[str, int, int]] = []
    for planned in plan:
        total = totals.get(planned.name, 3)
        progress.stage(planned.name, total=total)
        reports.append((planned.name, progress.done, total))
        for _ in range(total):
            progress.advance()
            reports.append((planned.name, progress.done, total))
    return reports


def test_a_spin_runs_bar_only_moves_forward_and_is_full_only_when_the_run_succeeds():
    plan = spin_stages(SpinConfig(iterations=3))
    assert [stage.name for stage in plan[:6]] == [
        "load model",
        "iter 0 · generate",
        "iter 0 · export",
        "iter 0 · reference",
        "iter 0 · train",
        "iter 0 · save",
    ]
    assert plan[-1].name == "iter 2 · save" and len(plan) == 1 + 3 * 5
    fractions = []
    stage_numbers = []
    for stage, done, total in _reported(plan, {"iter 1 · train": 40, "load model": 1}):
        shown = whole_run_progress(plan, stage=stage, done=done, total=total)
        assert shown is not None and (shown.stage, shown.done, shown.total) == (stage, done, total)
        fractions.append(shown.fraction)
        stage_numbers.append(shown.stage_number)
    assert fractions == sorted(fractions), "the bar went back"
    assert stage_numbers == sorted(stage_numbers) and stage_numbers[-1] == len(plan)
    assert fractions[-1] < 1.0 and max(shown for shown in fractions) < 1.0  # the last stage done is not the run done
    # A stage finished at "1/1 (100%)" is only its share of the run.
    loaded = whole_run_progress(plan, stage="load model", done=1, total=1)
    assert loaded is not None and loaded.percent < 5
    # Halfway through iteration 1's training is past iteration 0 and short of iteration 2.
    middle = whole_run_progress(plan, stage="iter 1 · train", done=20, total=40)
    assert middle is not None and 33 < middle.percent < 67
    finished = whole_run_progress(plan, stage="iter 2 · save", done=1, total=1, finished=True)
    assert finished is not None and finished.percent == 100


def test_a_skipped_stage_jumps_forward_and_an_unplanned_stage_gives_no_whole_run_figure():
    plan = [PlannedStage("a"), PlannedStage("b"), PlannedStage("c")]
    first = whole_run_progress(plan, stage="a", done=1, total=2)
    skipped_to_c = whole_run_progress(plan, stage="c", done=0, total=4)
    assert first is not None and skipped_to_c is not None
    assert (first.fraction, skipped_to_c.fraction) == (1 / 6, 2 / 3)
    assert skipped_to_c.stage_number == 3
    assert whole_run_progress(plan, stage="something else", done=1, total=1) is None
    prefixed = [PlannedStage("rmsp · sample", prefix=True), PlannedStage("rmsp · score")]
    sampling = whole_run_progress(prefixed, stage="rmsp · sample (A, n=4)", done=2, total=4)
    assert sampling is not None and sampling.stage_number == 1 and sampling.fraction == 0.25


def test_every_kind_declares_its_stages():
    assert {declared.kind for declared in all_run_kinds() if declared.stages is None} == set()


@pytest.mark.django_db
def test_the_run_page_shows_the_whole_runs_progress_and_the_current_stage(researcher_client, researcher):
    run = services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set_of(4, "four")))
    PipelineRun.objects.filter(pk=run.pk).update(
        status=PipelineRun.Status.RUNNING, stage="export", progress_done=1, progress_total=1
    )
    page = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "stage 2 of 2: export — 1/1" in page and "99%</strong> of the run" in page
    assert 'aria-valuenow="99"' in page
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.SUCCEEDED)
    page = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert "100%</strong> of the run" in page and 'aria-valuenow="100"' in page


@pytest.mark.django_db(transaction=True)
def test_three_queued_runs_show_their_place_in_the_queue_and_workers_show_their_run(
    live_settings, researcher_client, researcher
):
    """Real Redis: the runs' jobs wait in the gpu queue in the order they were queued."""
    import django_rq

    django_rq.get_queue("gpu").empty()  # jobs other tests of this session left in this test Redis database
    prompt_set = prompt_set_of(2, "two")
    runs = [
        services.run_create(user=researcher, kind="generate", config=small_generate_config(prompt_set))
        for _ in range(3)
    ]
    positions = selectors.queue_positions()
    assert [positions[run.rq_job_id] for run in runs] == [1, 2, 3]
    assert [run.queue_position for run in selectors.runs_with_live_state(runs)] == [1, 2, 3]

    listing = researcher_client.get(reverse("runs:list")).content.decode()
    for place in (1, 2, 3):
        assert f"number {place} in the gpu queue" in listing
    page = researcher_client.get(reverse("runs:detail", args=[runs[1].pk])).content.decode()
    assert "number 2 in the gpu queue" in page

    services.run_request_cancel(run=runs[0])  # its job leaves the queue: the others move up
    assert [selectors.run_queue_position(PipelineRun.objects.get(pk=run.pk)) for run in runs] == [None, 1, 2]

    # A worker on run 2 (as RQ records it), shown on the dashboard with a link to the run.
    from rq import Worker

    worker = Worker(["gpu"], connection=django_rq.get_connection("gpu"), name="gpu-worker-test")
    worker.register_birth()
    try:
        worker.set_current_job_id(runs[1].rq_job_id)
        PipelineRun.objects.filter(pk=runs[1].pk).update(status=PipelineRun.Status.RUNNING, worker_name=worker.name)
        dashboard = researcher_client.get(reverse("dashboard")).content.decode()
        assert '<tr data-worker="gpu-worker-test">' in dashboard
        assert f'href="{runs[1].get_absolute_url()}">#{runs[1].pk} ' in dashboard
        assert "on gpu-worker-test" in dashboard  # the running run's row says which worker has it
    finally:
        worker.register_death()


class _TracedProgress(RecordingProgress):
    """Records (stage, done, total) after every report, as the worker would write them."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[str, int, int]] = []

    def stage(self, name: str, total: int, done: int = 0) -> None:
        super().stage(name, total, done)
        self.reports.append((name, self.done, self.total))

    def advance(self, count: int = 1) -> None:
        super().advance(count)
        self.reports.append((self.stages[-1][0], self.done, self.total))


@pytest.mark.slow
def test_a_real_spin_run_reports_only_its_planned_stages_and_its_bar_never_goes_back(tmp_path, tiny_model_dir):
    """Two SPIN iterations on the tiny random model: every stage it reports is in its plan, in order."""
    import json
    from dataclasses import replace

    from pipelines.common.store import RunStore
    from pipelines.llm.loader import LocalBackends
    from pipelines.llm.types import SamplingParams
    from pipelines.spin.config import tiny_cpu_preset
    from pipelines.spin.run import SpinInputs, run_spin

    sft_path = tmp_path / "sft.jsonl"
    sft_path.write_text("".join(json.dumps({"question": f"q{i}?", "answer": f"a{i}."}) + "\n" for i in range(4)))
    config = tiny_cpu_preset(SpinConfig(iterations=2))
    training = config.training.training
    config = replace(
        config,
        generation=SamplingParams(n=1, temperature=1.0, top_p=1.0, max_tokens=4, seed=3),
        generation_batch_size=2,
        training=replace(config.training, training=replace(training, max_steps=2, save_steps=2, torch_threads=2)),
        max_prompts=4,
    )
    progress = _TracedProgress()
    inputs = SpinInputs(
        model={"kind": "transformers", "source": "local", "path": str(tiny_model_dir)}, sft_path=sft_path
    )
    run_spin(config, inputs, LocalBackends(tmp_path / "cache"), RunStore(tmp_path / "run"), progress)

    plan = spin_stages(config)
    shown = [whole_run_progress(plan, stage=stage, done=done, total=total) for stage, done, total in progress.reports]
    unplanned = {stage for (stage, _, _), figure in zip(progress.reports, shown, strict=True) if figure is None}
    assert unplanned == set(), f"stages the plan does not name: {unplanned}"
    fractions = [figure.fraction for figure in shown if figure is not None]
    assert fractions == sorted(fractions) and fractions[-1] < 1.0
    assert shown[-1] is not None and shown[-1].stage_number == len(plan)

"""SPIN's run page shows each iteration's training length report, so a pair cut to the limits is never unseen."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.common.store import RunStore
from pipelines.spin.inspect import iteration_rows
from pipelines.training.length_limits import LengthReport
from pipelines.training.result import TrainingResult
from pipelines.training.saving import FINAL_DIR, RESULT_FILE
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _lengths(*, rows_cut: int) -> dict:
    """A length report as preference training writes it: 4 pairs, one over the prompt limit."""
    report = LengthReport(max_length=64, max_prompt_length=32, over_length="cut")
    for row_number, (prompt, completions) in enumerate([(40, [10, 12]), (20, [9, 30]), (12, [5, 4]), (8, [3, 3])]):
        report.add(row_number, prompt, completions)
    report.rows_cut = rows_cut
    return report.summary()


def _finished_iteration(store: RunStore, iteration: int, lengths: dict) -> None:
    """What run_spin leaves on disk for a finished iteration: its summary and its training's result."""
    store.write_json(
        {
            "pairs": 4,
            "train_pairs": 4,
            "learning_rate": 5e-7,
            "beta": 0.1,
            "steps": 2,
            "metrics": {"train_loss": 0.69},
            "generation_seconds": 1.0,
            "seconds": 3.0,
        },
        f"iter-{iteration}",
        "summary.json",
    )
    result = TrainingResult(
        output_dir="/m/out", adapter_dir=None, merged_dir=None, metrics={}, steps=2, parameter_count=1, lengths=lengths
    )
    RunStore(store.path(f"iter-{iteration}", "train")).write_json(result.to_dict(), FINAL_DIR, RESULT_FILE)


def test_each_iterations_length_report_reaches_the_run_page_with_its_cuts(researcher_client, tmp_path: Path):
    store = RunStore(tmp_path / "run")
    _finished_iteration(store, 0, _lengths(rows_cut=1))
    _finished_iteration(store, 1, _lengths(rows_cut=0))
    rows = iteration_rows(store, 2)
    assert rows[0]["lengths"]["rows_cut"] == 1 and rows[0]["lengths"]["longest_prompt_tokens"] == 40
    assert rows[1]["lengths"]["rows"] == 4

    run = PipelineRun.objects.create(
        kind="spin",
        config={"spin": {}},
        summary={"iterations": rows},
        status=PipelineRun.Status.SUCCEEDED,
    )
    # The table names each iteration's model from the run's registry entries, not from the summary.
    for iteration in (0, 1):
        ModelEntry.objects.create(
            name=f"tiny → SPIN iter{iteration} #{run.pk}",
            source=ModelEntry.Source.RUN,
            path=f"/m/out{iteration}",
            produced_by_run=run,
            training_config={"spin_iteration": iteration},
        )
    html = researcher_client.get(run.get_absolute_url()).content.decode()
    iteration_table = html[html.index('id="spin-iterations"') :].split("</table>")[0]
    assert f"tiny → SPIN iter0 #{run.pk}" in iteration_table and f"tiny → SPIN iter1 #{run.pk}" in iteration_table
    table = html[html.index('id="spin-lengths"') :]
    assert '<tr data-training="iter 0">' in table and '<tr data-training="iter 1">' in table
    assert "40 / 32" in table  # the longest prompt against max_prompt_length
    assert "iter 0: 1 row cut to the limits" in table
    assert "iter 1:" not in table.split("</table>")[0].split('data-training="iter 1"')[1]  # nothing cut: no warning

"""ALMoST's run page shows the reward model's training length report, so a comparison cut to the limits is never unseen."""

from __future__ import annotations

import pytest

from pipelines.training.length_limits import LengthReport
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _lengths() -> dict:
    """A length report as reward training writes it: 3 comparisons, one over max_length and dropped."""
    report = LengthReport(max_length=64, max_prompt_length=32, over_length="drop")
    for row_number, (prompt, completions) in enumerate([(30, [50, 12]), (20, [9, 30]), (12, [5, 4])]):
        report.add(row_number, prompt, completions)
    report.rows_dropped = 1
    return report.summary()


def test_the_reward_models_length_report_reaches_the_run_page_with_its_drops(researcher_client):
    # The pipeline puts the trainer's length report into the reward step's summary (tests/pipelines/almost).
    lengths = _lengths()
    assert lengths["rows"] == 3 and lengths["rows_dropped"] == 1 and lengths["longest_example_tokens"] == 80

    run = PipelineRun.objects.create(
        kind="almost",
        config={"almost": {"configurations": []}},
        summary={
            "reward_training": {"held_out_accuracy": 0.5, "steps": 2, "train_pairs": 1, "held_out_pairs": 1, "lengths": lengths}
        },
        status=PipelineRun.Status.SUCCEEDED,
    )
    html = researcher_client.get(run.get_absolute_url()).content.decode()
    table = html[html.index('id="almost-rm-lengths"') :].split("</table>")[0]
    assert '<tr data-training="reward model">' in table
    assert "80 / 64" in table and "<td>drop</td>" in table  # the longest example against max_length, the rule
    assert "reward model: 1 row left out" in table and "max_length 80" in table

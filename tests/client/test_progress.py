"""The --wait progress display: the whole run's fraction as the bar, the stage and its counts in the label."""

from __future__ import annotations

import io

from refinery_client import progress
from refinery_client.progress import RunProgress, progress_label, progress_percent


def _run(status: str, stage: str = "", **counts: object) -> dict:
    return {"id": 7, "status": status, "stage": stage, "progress": {"done": 0, "total": 0, "fraction": None, **counts}}


def test_the_label_names_the_stage_of_how_many_and_its_counts():
    running = _run("running", "generate", done=40, total=100, fraction=0.25, stage_number=2, stage_count=3)
    assert progress_label(running) == "run 7 running · stage 2/3 generate 40/100"
    assert progress_percent(running) == 25.0
    assert progress_label(_run("queued")) == "run 7 queued" and progress_percent(_run("queued")) is None
    assert progress_label(_run("running", "load")) == "run 7 running · load"


def test_without_tqdm_each_change_is_one_line(monkeypatch):
    stream = io.StringIO()
    display = RunProgress(stream=stream)
    monkeypatch.setattr(display, "_has_tqdm", False)
    for state in (_run("queued"), _run("queued"), _run("running", "generate", done=1, total=2, fraction=0.5)):
        display(state)
    display.close()
    assert stream.getvalue().splitlines() == ["run 7 queued", "run 7 running · generate 1/2 (50%)"]


def test_with_tqdm_the_bar_ends_full_on_success():
    stream = io.StringIO()
    display = RunProgress(stream=stream)
    display(_run("running", "generate", done=1, total=4, fraction=0.25, stage_number=1, stage_count=1))
    display(_run("succeeded", "generate", done=4, total=4, fraction=1.0, stage_number=1, stage_count=1))
    display.close()
    assert progress.BAR_FORMAT and "100%" in stream.getvalue().split("\r")[-1]

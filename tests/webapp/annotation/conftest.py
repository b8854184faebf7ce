"""Fixtures for the annotation tests: pair artifacts written to disk, a rubric, campaigns, and judging helpers."""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from webapp.annotation import services
from webapp.annotation.models import Campaign, Item, Judgment

SECRET_CONFIG_GOOD = "cfg-SECRET-good-70B"
SECRET_CONFIG_BAD = "cfg-SECRET-bad-7B"
SECRET_CONFIG_WORSE = "cfg-SECRET-worse-1B"


def preference_rows(count: int) -> list[dict[str, Any]]:
    """Pairs like ALMoST's comparisons: the first half good-vs-bad, the second half good-vs-worse."""
    rows = []
    for index in range(1, count + 1):
        rejected_config = SECRET_CONFIG_BAD if index <= count // 2 else SECRET_CONFIG_WORSE
        rows.append({
            "prompt": f"Question number {index}: how do I reverse a list in Python?",
            "chosen": f"Good answer {index}: use reversed() or slicing with [::-1].",
            "rejected": f"Weak answer {index}: you cannot.",
            "chosen_config": SECRET_CONFIG_GOOD,
            "rejected_config": rejected_config,
            "filter_verdict": "verdict-KEEP" if index % 2 else "verdict-RESCUE",
        })
    return rows


@pytest.fixture
def write_artifact(tmp_path: Path) -> Callable[..., Any]:
    """Write rows as a JSONL artifact registered without a run, like an imported dataset."""
    from webapp.runs.services import artifact_register

    def write(rows: list[dict[str, Any]], name: str | None = None, kind: str = "comparisons") -> Any:
        name = name or f"pairs-{uuid.uuid4().hex[:8]}"
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return artifact_register(run=None, name=name, kind=kind, jsonl_path=path)

    return write


@pytest.fixture
def rubric(db: Any) -> Any:
    from webapp.library.models import Rubric

    return Rubric.objects.create(
        name=f"Helpfulness {uuid.uuid4().hex[:6]}",
        criteria="Correct, complete and concise answers are better.",
        guidelines="Read the prompt first. Prefer the response that actually answers it.",
    )


@pytest.fixture
def make_campaign(write_artifact: Callable[..., Any], rubric: Any, researcher: Any) -> Callable[..., Campaign]:
    def make(*, assignees: list[Any], rows: list[dict[str, Any]] | None = None, **options: Any) -> Campaign:
        rows = rows if rows is not None else preference_rows(6)
        settings = {"sample_size": len(rows), "overlap": min(2, len(assignees)), "flags": ["factual error", "harmful"], "seed": 7}
        settings.update(options)
        return services.campaign_create(
            user=researcher, name=f"Spot check {uuid.uuid4().hex[:6]}", artifact=write_artifact(rows), rubric=rubric,
            assignees=assignees, **settings,
        )

    return make


def choice_for(item: Item, verdict: str) -> str:
    """The button an annotator presses to give `verdict`, given how the item's sides were shown."""
    if verdict == "a":
        return Judgment.Choice.LEFT if item.a_on_left else Judgment.Choice.RIGHT
    if verdict == "b":
        return Judgment.Choice.RIGHT if item.a_on_left else Judgment.Choice.LEFT
    return verdict


def judge_next(campaign: Campaign, annotator: Any, verdict: str | Callable[[Item], str], **extra: Any) -> Judgment | None:
    """Claim the annotator's next item and judge it; None when nothing is left for them."""
    item = services.assignment_next(campaign=campaign, annotator=annotator, now=extra.pop("now", None))
    if item is None:
        return None
    wanted = verdict(item) if callable(verdict) else verdict
    return services.judgment_submit(
        campaign=campaign, annotator=annotator, item_id=item.pk, choice=choice_for(item, wanted),
        submission_key=uuid.uuid4().hex, **extra,
    )

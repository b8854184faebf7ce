"""At a 1366 px laptop width nothing on the evaluation, leaderboard and ALMoST run pages spills out of its box:
no box's content is wider than the box (scrolled or clipped), the page never scrolls sideways, and every
win-rate bar's label is printed whole, inside the chart.

The evaluation is made by the real worker (the evaluation kind's prepare, the generic runner) on answers
artifacts with long names and answers holding long unbroken tokens, a scripted judge standing in for a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.llm.loader import LocalBackends
from pipelines.llm.types import Completion
from pipelines.training.length_limits import LengthReport
from tests.browser.conftest import needs_chromium
from tests.fixtures.judges import responses_to_judge

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium, pytest.mark.django_db(transaction=True)]

PASSWORD = "an-overflow-hunting-password-42"
LAPTOP = {"width": 1366, "height": 768}
PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello.", "Write the URL of the Python docs.", "Name a fruit."]
UNBROKEN = "https://docs.python.org/3/reference/" + "compound_stmts_and_expressions_" * 6 + "end"
CANDIDATE_NAMES = [
    "spin-iteration-2-checkpoint-answers-on-the-python-reference-prompts",
    "almost-reward-model-guided-self-play-sft-answers-temperature-0.7",
    "augcon-sft-smollm2-135m-instruct-answers",
]

# Every box under <main> whose content is wider than the box itself: clipped (overflow hidden) or only
# reachable by scrolling sideways; inline boxes and SVG internals are measured by their containers.
OVERFLOWING_BOXES = """() => {
  const problems = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth) problems.push(`the page scrolls sideways: ${page.scrollWidth} > ${page.clientWidth}`);
  for (const element of document.querySelectorAll("main *")) {
    const style = getComputedStyle(element);
    if (["inline", "contents", "none"].includes(style.display) || element.closest("svg") && element.tagName !== "svg") continue;
    if (element.scrollWidth > element.clientWidth + 1) {
      const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") + (element.className && typeof element.className === "string" ? "." + element.className.trim().replace(/\\s+/g, ".") : "");
      problems.push(`${name} (${element.scrollWidth} > ${element.clientWidth}): ${element.textContent.trim().slice(0, 60)}`);
    }
  }
  return problems;
}"""


def _assert_fits(page) -> None:  # type: ignore[no-untyped-def]
    problems = page.evaluate(OVERFLOWING_BOXES)
    assert not problems, f"{page.url} at 1366 px:\n" + "\n".join(problems)


class PreferLongerJudge:
    """Picks the longer response, whichever position it is in; "tie" when equally long."""

    name = "prefer-longer"

    def chat(self, conversations, params):  # type: ignore[no-untyped-def]
        outputs = []
        for conversation in conversations:
            response_a, response_b = responses_to_judge(conversation)
            verdict = (
                "tie" if len(response_a) == len(response_b) else ("A" if len(response_a) > len(response_b) else "B")
            )
            outputs.append([Completion(verdict, 10, 1)])
        return outputs

    def close(self) -> None:
        pass


def _answers(tmp_path: Path, name: str, length: int):  # type: ignore[no-untyped-def]
    from webapp.library.models import Artifact
    from webapp.runs import services as run_services

    path = tmp_path / f"{name}.jsonl"
    rows = [
        {"prompt": prompt, "response": f"{UNBROKEN} " + "words " * (length + index)}
        for index, prompt in enumerate(PROMPTS)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.GENERATIONS, jsonl_path=path)


def _finished_evaluation(user, tmp_path: Path, monkeypatch, settings):  # type: ignore[no-untyped-def]
    from webapp.evaluation import services
    from webapp.library.models import SeedPrompt, SeedPromptSet
    from webapp.registry.models import ModelEntry
    from workers import runner

    prompt_set = SeedPromptSet.objects.create(name="five", prompt_count=len(PROMPTS))
    for position, text in enumerate(PROMPTS):
        SeedPrompt.objects.create(prompt_set=prompt_set, position=position, text=text)
    judge = ModelEntry.objects.create(name="judge", source=ModelEntry.Source.LOCAL, path="/models/judge")
    candidates = [_answers(tmp_path, name, length) for name, length in zip(CANDIDATE_NAMES, (3, 9, 1), strict=True)]
    baseline = _answers(tmp_path, "the-bundled-smollm2-135m-instruct-baseline-answers", 4)
    config, descriptions, baseline_description = services.evaluation_config_build(
        candidate_models=[],
        candidate_artifacts=candidates,
        baseline_model=None,
        baseline_artifact=baseline,
        judge=judge,
        bootstrap_rounds=50,
        judge_method="text",
    )
    evaluation = services.evaluation_create(
        user=user,
        config=config,
        candidates=descriptions,
        baseline=baseline_description,
        judge=judge,
        prompt_set=prompt_set,
        name="three checkpoints against the bundled model",
    )
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    judge_path = judge.backend_spec()["path"]
    given = {judge_path: PreferLongerJudge()}
    monkeypatch.setattr(
        runner, "WorkerBackends", lambda run_id, progress: LocalBackends(tmp_path / "models", given=given)
    )
    runner.run_job(evaluation.run, RecordingProgress())
    evaluation.refresh_from_db()
    assert evaluation.status == evaluation.Status.SUCCEEDED
    return evaluation


def _almost_run(user, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A finished ALMoST run's row as the pipeline leaves it: every step's summary, a comparisons artifact."""
    from webapp.library.models import Artifact
    from webapp.runs import services as run_services
    from webapp.runs.models import PipelineRun

    configurations = [
        {"model": "SmolLM2-135M-Instruct (bundled, dequantized from GGUF Q4_1)", "prompt": "hhh", "shots": shots}
        for shots in (3, 2, 1)
    ]
    report = LengthReport(max_length=64, max_prompt_length=32, over_length="drop")
    for row_number, (prompt, completions) in enumerate([(30, [50, 12]), (20, [9, 30]), (12, [5, 4])]):
        report.add(row_number, prompt, completions)
    filters = ["length_ratio_between_chosen_and_rejected", "no_final_punctuation", "no_repeated_ngrams_in_chosen"]
    run = PipelineRun.objects.create(
        kind="almost",
        name="almost on the python reference with a long descriptive name",
        created_by=user,
        status=PipelineRun.Status.SUCCEEDED,
        config={"almost": {"configurations": configurations, "rmsp": {"enabled": True}}},
        summary={
            "prompt_generation": {
                "prompts": 40,
                "requested": 40,
                "candidates": 52,
                "rejected": {"duplicate_of_an_earlier_prompt": 12},
            },
            "response_generation": {
                "configurations": [
                    {
                        "configuration": f"{entry['model']}·{entry['prompt']}·{entry['shots']}-shot",
                        "responses": 40,
                        "non_empty": 39,
                        "mean_chars": 412.5,
                    }
                    for entry in configurations
                ]
            },
            "comparisons": {
                "candidates": 120,
                "filters": [
                    {
                        "filter": name,
                        "enabled": True,
                        "before": 120 - 10 * index,
                        "after": 110 - 10 * index,
                        "failed": 10,
                    }
                    for index, name in enumerate(filters)
                ]
                + [{"filter": "one_pair_per_chosen", "enabled": True, "before": 90, "after": 40}],
            },
            "reward_training": {
                "held_out_accuracy": 0.625,
                "held_out_accuracy_at_start": 0.5,
                "train_pairs": 32,
                "held_out_pairs": 8,
                "steps": 4,
                "lengths": report.summary(),
            },
            "self_play": {
                "demonstrations": 40,
                "configuration": configurations[0]["model"],
                "n": 4,
                "scores": {
                    "count": 40,
                    "mean": 0.41,
                    "median": 0.4,
                    "min": -1.25,
                    "max": 2.5,
                    "histogram": [{"low": -1.25, "high": 0.0, "count": 10}, {"low": 0.0, "high": 2.5, "count": 30}],
                },
                "all_sample_scores": {"mean": 0.1},
            },
        },
    )
    path = tmp_path / "comparisons.jsonl"
    pairs = [
        {
            "prompt": f"Explain {UNBROKEN}",
            "chosen": f"See {UNBROKEN} for the grammar.",
            "rejected": "No.",
            "chosen_config": configurations[0]["model"],
            "rejected_config": configurations[2]["model"],
        }
    ] * 3
    path.write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    run_services.artifact_register(run=run, name="comparisons", kind=Artifact.Kind.PREFERENCES, jsonl_path=path)
    return run


def test_evaluation_leaderboard_and_almost_pages_fit_a_1366_px_laptop(
    browser_page, live_server, django_user_model, tmp_path, monkeypatch, settings
):
    page = browser_page
    page.set_viewport_size(LAPTOP)
    user = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    evaluation = _finished_evaluation(user, tmp_path, monkeypatch, settings)
    almost = _almost_run(user, tmp_path)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/dashboard/")

    page.goto(f"{live_server.url}{evaluation.get_absolute_url()}")
    bars = page.locator("#win-rate-chart .bar[data-metric]")
    assert bars.count() == 2 * len(CANDIDATE_NAMES)  # win rate and LC win rate per candidate
    chart = page.locator("#win-rate-chart").bounding_box()
    for index in range(bars.count()):
        label = bars.nth(index).locator(".bar-label")
        text = label.inner_text()
        assert any(text.startswith(name) for name in CANDIDATE_NAMES), f"bar label cut: {text!r}"
        box = label.bounding_box()
        assert box["x"] >= chart["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"] + 0.5, text
    _assert_fits(page)

    page.goto(f"{live_server.url}/evaluations/leaderboard/?judge={evaluation.judge_id}")
    assert page.locator("#leaderboard tr[data-contestant]").count() == len(CANDIDATE_NAMES) + 1
    _assert_fits(page)

    page.goto(f"{live_server.url}{almost.get_absolute_url()}")
    assert page.locator("#almost-filter-counts").is_visible()
    assert "{#" not in page.locator("main").inner_text()  # a multi-line {# #} comment prints as text
    _assert_fits(page)

"""An evaluation end to end: the site's service -> Redis -> a real rqworker -> answers, judge, statistics -> the result page.

The tiny random model answers and judges with the parsed-text judge, so its verdicts are noise: what
must hold is the bookkeeping (every judgment parsed or counted as a parse failure, nothing dropped)
and the pages. The second test is the issue's check with the real 135M model against itself at
another temperature, judged by itself with the log-probability judge: every verdict must be readable
(with the text judge, 5 of 6 were not).
"""

from __future__ import annotations

import time

import pytest

from tests.fixtures.runs import wait_for_run
from webapp.evaluation import services
from webapp.evaluation.models import CachedAnswer, Evaluation
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello."]


def _prompt_set() -> SeedPromptSet:
    prompt_set, created = SeedPromptSet.objects.get_or_create(name="three", defaults={"prompt_count": len(PROMPTS)})
    if not created:
        return prompt_set
    for position, text in enumerate(PROMPTS):
        SeedPrompt.objects.create(prompt_set=prompt_set, position=position, text=text)
    return prompt_set


def _evaluate(user, model: ModelEntry, *, max_tokens: int, judge_max_tokens: int, judge_method: str) -> Evaluation:
    config, candidates, baseline = services.evaluation_config_build(
        candidate_models=[model],
        candidate_artifacts=[],
        baseline_model=model,
        baseline_artifact=None,
        judge=model,
        max_tokens=max_tokens,
        candidate_temperature=1.0,
        baseline_temperature=0.0,
        seed=1,
        judge_max_tokens=judge_max_tokens,
        judge_retries=1,
        bootstrap_rounds=500,
        judge_method=judge_method,
    )
    return services.evaluation_create(
        user=user,
        config=config,
        candidates=candidates,
        baseline=baseline,
        judge=model,
        prompt_set=_prompt_set(),
        name="e2e",
    )


def _check_result_page(client, user, evaluation: Evaluation) -> dict:
    statistics = evaluation.results["candidates"]["c0"]
    assert statistics["judgments"] == 2 * len(PROMPTS)
    assert statistics["judged_prompts"] + statistics["unjudged_prompts"] == len(PROMPTS)
    assert statistics["judge_calls"] >= statistics["judgments"] + statistics["parse_failures"], (
        "unparsed replies were retried"
    )
    rows = list(evaluation_rows(evaluation))
    assert statistics["parse_failures"] == sum(row["unparsed_orders"] for row in rows)
    assert CachedAnswer.objects.count() == 2 * len(PROMPTS)
    client.force_login(user)
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="evaluation-statistics"' in page and page.count('data-prompt="') == len(PROMPTS)
    assert f'data-parse-failures="{statistics["parse_failures"]}"' in page
    return statistics


def evaluation_rows(evaluation: Evaluation):
    from webapp.evaluation.selectors import evaluation_rows as rows

    return rows(evaluation)


def test_tiny_model_evaluation_through_a_worker_counts_every_unreadable_verdict(
    live_settings, rq_worker, researcher, tiny_model_dir, client
):
    model = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    worker = rq_worker()
    evaluation = _evaluate(researcher, model, max_tokens=8, judge_max_tokens=4, judge_method="text")
    run = wait_for_run(evaluation.run, timeout=240)
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()[-3000:]
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    _check_result_page(client, researcher, evaluation)
    assert run.summary["answers_generated"] == 2 * len(PROMPTS)

    # The same comparison again: every answer comes from the cache; only judging runs.
    again = _evaluate(researcher, model, max_tokens=8, judge_max_tokens=4, judge_method="text")
    again_run = wait_for_run(again.run, timeout=240)
    assert again_run.status == PipelineRun.Status.SUCCEEDED, again_run.error + worker.log_text()[-3000:]
    assert (again_run.summary["answers_generated"], again_run.summary["answers_reused"]) == (0, 2 * len(PROMPTS))
    assert run_services.run_directory(again_run) != run_services.run_directory(run)


def test_the_135m_model_judging_itself_with_log_probabilities_reads_every_verdict(
    live_settings, rq_worker, researcher, client
):
    worker = rq_worker()
    started = time.monotonic()
    evaluation = _evaluate(
        researcher, model_ensure_embedded(), max_tokens=12, judge_max_tokens=4, judge_method="logprob"
    )
    run = wait_for_run(evaluation.run, timeout=400)
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()[-3000:]
    evaluation.refresh_from_db()
    statistics = _check_result_page(client, researcher, evaluation)
    assert statistics["judge_method"] == "logprob"
    assert statistics["parse_failures"] == 0 and statistics["judged_prompts"] == len(PROMPTS)
    assert statistics["single_order_prompts"] == 0 and statistics["judge_calls"] == statistics["judgments"]
    rows = list(evaluation_rows(evaluation))
    masses = [
        judgment
        for row in rows
        for judgment in (row["verdict_probabilities_candidate_first"], row["verdict_probabilities_baseline_first"])
    ]
    assert all(sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5) for probabilities in masses)
    page = client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="judge-method" data-method="logprob"' in page
    bias = statistics["position_bias"]
    assert (bias["warning"] is True) == ("position-bias-warning" in page)
    assert run.summary[f"{statistics['label']}: judge method"] == "logprob"
    print(
        f"135M end-to-end evaluation (log-prob judge): {time.monotonic() - started:.1f} s wall, "
        f"{statistics['parse_failures']} of {statistics['judgments']} verdicts unreadable, "
        f"win rate {statistics['win_rate']['win_rate']:.1f} +/- {statistics['win_rate']['standard_error']:.1f}, "
        f"LC {statistics['length_controlled']['win_rate']} +/- {statistics['length_controlled']['standard_error']}, "
        f"same position {bias['same_position_share']} {bias['favoured']} of {bias['decided']} (warning {bias['warning']}), "
        f"preferences {[row['preference'] for row in rows]}, "
        f"P(A,B,tie) {[{k: round(v, 3) for k, v in p.items()} for p in masses]}"
    )

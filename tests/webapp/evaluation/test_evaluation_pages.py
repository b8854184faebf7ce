"""Evaluation pages and services: refusals queue nothing; results, filters, exports and the leaderboard render.

Finished evaluations here are made by the real worker (`workers.runner.run_job`) on answers artifacts, with a small
scripted judge (an `LLMBackend` whose verdicts are fixed) standing in for a model: what is under test
is the bookkeeping and the pages, not what a model says.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from pipelines.common.progress import RecordingProgress
from pipelines.llm.loader import LocalBackends
from pipelines.llm.types import Completion
from tests.fixtures.judges import responses_to_judge
from webapp.evaluation import services
from webapp.evaluation.models import CachedAnswer, Evaluation
from webapp.library.models import Artifact, Rubric, SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db

PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello.", "Count to three.", "Name a fruit."]


class PreferLongerJudge:
    """Picks the longer response, whichever position it is in; "tie" when equally long."""

    name = "prefer-longer"

    def chat(self, conversations, params):
        outputs = []
        for conversation in conversations:
            response_a, response_b = responses_to_judge(conversation)
            verdict = "tie" if len(response_a) == len(response_b) else ("A" if len(response_a) > len(response_b) else "B")
            outputs.append([Completion(verdict, 10, 1)])
        return outputs

    def complete(self, prompts, params):  # pragma: no cover - judges chat
        raise NotImplementedError

    def close(self):
        pass


class FirstPositionJudge(PreferLongerJudge):
    name = "first-position"

    def chat(self, conversations, params):
        return [[Completion("A", 10, 1)] for _ in conversations]


def _answers(tmp_path: Path, name: str, answer_for) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "response": answer_for(p)}) + "\n" for p in PROMPTS))
    return run_services.artifact_register(run=None, name=name, kind=Artifact.Kind.GENERATIONS, jsonl_path=path)


@pytest.fixture
def prompt_set() -> SeedPromptSet:
    prompt_set = SeedPromptSet.objects.create(name="five", prompt_count=len(PROMPTS))
    for position, text in enumerate(PROMPTS):
        SeedPrompt.objects.create(prompt_set=prompt_set, position=position, text=text)
    return prompt_set


@pytest.fixture
def judge_model() -> ModelEntry:
    return ModelEntry.objects.create(name="judge", source=ModelEntry.Source.LOCAL, path="/models/judge")


def _finish(evaluation: Evaluation, judge, monkeypatch, settings, tmp_path) -> Evaluation:
    """Run the evaluation's job through the real worker (its kind's prepare, the generic runner), the judge
    model swapped for a scripted one."""
    from workers import runner

    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    judge_path = evaluation.judge.backend_spec()["path"]
    monkeypatch.setattr(
        runner, "WorkerBackends", lambda run_id, progress: LocalBackends(tmp_path / "models", given={judge_path: judge})
    )
    runner.run_job(evaluation.run, RecordingProgress())
    evaluation.refresh_from_db()
    return evaluation


def _create(researcher, prompt_set, judge_model, candidates, baseline, name: str = "", **options) -> Evaluation:
    options.setdefault("judge_method", "text")  # the scripted judges here write their verdicts
    config, descriptions, baseline_description = services.evaluation_config_build(
        candidate_models=[], candidate_artifacts=candidates, baseline_model=None, baseline_artifact=baseline,
        judge=judge_model, bootstrap_rounds=200, **options,
    )
    return services.evaluation_create(
        user=researcher, config=config, candidates=descriptions, baseline=baseline_description, judge=judge_model,
        prompt_set=prompt_set, name=name,
    )


# --- refusals ---------------------------------------------------------------------------------------


def test_an_evaluation_without_candidates_or_with_two_baselines_is_refused_and_queues_nothing(tmp_path, judge_model):
    base = _answers(tmp_path, "base", lambda p: "x")
    model = model_ensure_embedded()
    with pytest.raises(ValidationError) as caught:
        services.evaluation_config_build(candidate_models=[], candidate_artifacts=[], baseline_model=model,
                                         baseline_artifact=None, judge=judge_model)
    assert "candidate_models" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.evaluation_config_build(candidate_models=[model], candidate_artifacts=[], baseline_model=model,
                                         baseline_artifact=base, judge=judge_model)
    assert "exactly one baseline" in caught.value.message_dict["baseline_model"][0]
    assert PipelineRun.objects.count() == 0 and Evaluation.objects.count() == 0


def test_a_model_against_itself_with_the_same_decoding_is_refused_but_another_temperature_is_fine(judge_model):
    model = model_ensure_embedded()
    with pytest.raises(ValidationError, match="both a candidate and the baseline"):
        services.evaluation_config_build(candidate_models=[model], candidate_artifacts=[], baseline_model=model,
                                         baseline_artifact=None, judge=judge_model)
    config, descriptions, baseline = services.evaluation_config_build(
        candidate_models=[model], candidate_artifacts=[], baseline_model=model, baseline_artifact=None, judge=judge_model,
        candidate_temperature=1.0, baseline_temperature=0.2, rubric=Rubric.objects.create(name="r", criteria="Be brief."),
    )
    assert descriptions[0]["leaderboard_key"] != baseline["leaderboard_key"]
    assert "Be brief." in config.judge.criteria


def test_a_setting_the_pipeline_config_refuses_is_named_by_its_field(tmp_path, judge_model):
    base, new = _answers(tmp_path, "base", lambda p: "x"), _answers(tmp_path, "new", lambda p: "y")
    with pytest.raises(ValidationError) as caught:
        services.evaluation_config_build(candidate_models=[], candidate_artifacts=[new], baseline_model=None,
                                         baseline_artifact=base, judge=judge_model, bootstrap_rounds=0)
    assert "bootstrap_rounds must be between 1 and 100000" in caught.value.message_dict["bootstrap_rounds"][0]


def test_an_artifact_without_answer_columns_and_a_reward_judge_are_refused(tmp_path, judge_model):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    pairs = run_services.artifact_register(run=None, name="pairs", kind=Artifact.Kind.PREFERENCES, jsonl_path=path)
    with pytest.raises(ValidationError) as caught:
        services.evaluation_config_build(candidate_models=[], candidate_artifacts=[pairs], baseline_model=model_ensure_embedded(),
                                         baseline_artifact=None, judge=judge_model)
    assert "answer column" in caught.value.message_dict["candidate_artifacts"][0]
    reward = ModelEntry.objects.create(name="rm", source=ModelEntry.Source.LOCAL, path="/x", task=ModelEntry.Task.REWARD)
    with pytest.raises(ValidationError) as caught:
        services.evaluation_config_build(candidate_models=[model_ensure_embedded()], candidate_artifacts=[],
                                         baseline_model=None, baseline_artifact=_answers(tmp_path, "b", str), judge=reward)
    assert "judge" in caught.value.message_dict


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'{"prompt": "ok"}\n[1, 2]\n', "prompts.jsonl, line 2: expected a JSON object"),
        (b'{"prompt": "ok"}\n{"text": "no prompt field"}\n', "prompts.jsonl, line 2: no prompt"),
        (b'{"prompt": "ok"}\n{broken\n', "prompts.jsonl, line 2: not valid JSON"),
        (b"\n\n", "no prompts"),
    ],
)
def test_an_imported_prompt_file_with_a_bad_line_is_refused_naming_the_line(content, fragment, tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as caught:
        services.parse_imported_prompts(path, file_name="prompts.jsonl")
    assert fragment in caught.value.message_dict["prompts_file"][0]


def test_alpaca_eval_style_instructions_import(tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(b'{"instruction": "Write a poem.", "dataset": "x"}\n')
    prompts = services.parse_imported_prompts(path, file_name="ae.jsonl")
    assert prompts == ["Write a poem."]


def test_the_form_refuses_a_missing_baseline_with_status_400_and_queues_nothing(researcher_client, prompt_set, judge_model):
    model = model_ensure_embedded()
    response = researcher_client.post("/evaluations/new/", {
        "candidate_models": [model.pk], "prompt_set": prompt_set.pk, "judge": judge_model.pk, "max_tokens": 32,
        "candidate_temperature": 0.7, "baseline_temperature": 0.7, "judge_max_tokens": 8, "judge_retries": 1,
        "bootstrap_rounds": 200, "judge_method": "logprob",
    })
    assert response.status_code == 400
    assert "exactly one baseline" in response.content.decode()
    assert PipelineRun.objects.count() == 0 and Evaluation.objects.count() == 0


def test_the_form_queues_an_evaluation_run_with_imported_prompts(researcher_client, judge_model, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    model = model_ensure_embedded()
    upload = SimpleUploadedFile("questions.jsonl", b'{"instruction": "Say hi."}\n{"prompt": "Say bye."}\n')
    response = researcher_client.post("/evaluations/new/", {
        "name": "hot vs cold", "candidate_models": [model.pk], "baseline_model": model.pk, "prompts_file": upload,
        "judge": judge_model.pk, "max_tokens": 32, "candidate_temperature": 1.0, "baseline_temperature": 0.2,
        "seed": 3, "judge_max_tokens": 8, "judge_retries": 1, "bootstrap_rounds": 200, "judge_method": "logprob",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    evaluation = Evaluation.objects.get()
    assert response["Location"] == evaluation.get_absolute_url()
    assert evaluation.imported_prompts == ["Say hi.", "Say bye."] and evaluation.prompt_source == "questions.jsonl"
    run = evaluation.run
    assert run.kind == "evaluation" and run.queue_name == "gpu"
    config = run.config["evaluation"]
    assert config["candidates"][0]["sampling"]["temperature"] == 1.0 and config["baseline"]["sampling"]["temperature"] == 0.2
    assert config["judge"]["sampling"]["max_tokens"] == 8 and config["judge"]["retries"] == 1
    assert config["judge"]["method"] == "logprob"
    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert "Results appear here when the run has finished" in page


# --- results ------------------------------------------------------------------------------------------


def test_the_result_page_shows_bars_statistics_rows_and_filters_position_disagreements(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    # The candidate is longer on three prompts, shorter on two: a length-loving judge gives 60 %.
    long_on = set(PROMPTS[:3])
    candidate = _answers(tmp_path, "new", lambda p: "a long and detailed answer" if p in long_on else "no")
    baseline = _answers(tmp_path, "old", lambda p: "a medium answer")
    evaluation = _create(researcher, prompt_set, judge_model, [candidate], baseline, name="longer wins")
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    statistics = evaluation.results["candidates"]["c0"]
    assert statistics["win_rate"]["win_rate"] == 60 and statistics["position_disagreements"] == 0
    assert statistics["lengths"]["candidate_longer_share"] == 0.6

    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="win-rate-chart"' in page and 'data-metric="win_rate" data-value="60.0"' in page
    assert 'data-metric="length_controlled"' in page
    assert page.count('data-prompt="') == len(PROMPTS)
    assert "a long and detailed answer" in page and "a medium answer" in page
    only_disagreements = researcher_client.get(evaluation.get_absolute_url(), {"filter": "disagreements"}).content.decode()
    assert only_disagreements.count('data-prompt="') == 0 and "No rows match this filter." in only_disagreements
    losses = researcher_client.get(evaluation.get_absolute_url(), {"filter": "losses"}).content.decode()
    assert losses.count('data-prompt="') == 2

    listing = researcher_client.get("/evaluations/").content.decode()
    assert "longer wins" in listing and "60.0%" in listing
    run_page = researcher_client.get(evaluation.run.get_absolute_url()).content.decode()
    assert 'id="evaluation-headline"' in run_page


def test_a_first_position_judge_shows_every_prompt_as_a_position_disagreement(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    evaluation = _create(researcher, prompt_set, judge_model, [_answers(tmp_path, "n", lambda p: "yes")],
                         _answers(tmp_path, "o", lambda p: "no"))
    evaluation = _finish(evaluation, FirstPositionJudge(), monkeypatch, settings, tmp_path)
    assert evaluation.results["candidates"]["c0"]["win_rate"]["win_rate"] == 50
    page = researcher_client.get(evaluation.get_absolute_url(), {"filter": "disagreements"}).content.decode()
    assert page.count('data-prompt="') == len(PROMPTS) and "orders disagree" in page


def test_exports_hold_every_row_with_both_verdicts(researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings):
    evaluation = _create(researcher, prompt_set, judge_model, [_answers(tmp_path, "n", lambda p: p * 2)],
                         _answers(tmp_path, "o", lambda p: p))
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    response = researcher_client.get(f"/evaluations/{evaluation.pk}/export/csv/")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(PROMPTS)
    assert {(row["verdict_candidate_first"], row["verdict_baseline_first"]) for row in rows} == {("A", "B")}
    document = json.loads(researcher_client.get(f"/evaluations/{evaluation.pk}/export/json/").content)
    assert document["results"]["candidates"]["c0"]["win_rate"]["win_rate"] == 100 and len(document["rows"]) == len(PROMPTS)
    assert researcher_client.get(f"/evaluations/{evaluation.pk}/export/xlsx/").status_code == 404


def test_human_judging_hook_turns_the_pairs_into_a_campaign_ready_artifact(
    researcher, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    evaluation = _create(researcher, prompt_set, judge_model, [_answers(tmp_path, "n", lambda p: p * 2)],
                         _answers(tmp_path, "o", lambda p: p))
    with pytest.raises(ValidationError, match="no results yet"):
        services.evaluation_pairs_artifact(evaluation=evaluation)
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    artifact = services.evaluation_pairs_artifact(evaluation=evaluation)
    assert artifact.kind == Artifact.Kind.COMPARISONS and artifact.row_count == len(PROMPTS)
    assert {"prompt", "response_a", "response_b", "model_a", "model_b", "judge_verdict"} <= set(artifact.columns)
    assert {row["judge_verdict"] for row in artifact.preview} == {"A"}


def test_the_leaderboard_ranks_checkpoints_from_the_evaluations_run_so_far(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    base = _answers(tmp_path, "base", lambda p: "ok")
    iteration_0 = _answers(tmp_path, "spin-iter0", lambda p: "ok" if p in PROMPTS[:2] else "okay")
    iteration_1 = _answers(tmp_path, "spin-iter1", lambda p: "a much longer answer")
    first = _create(researcher, prompt_set, judge_model, [iteration_0], base)
    _finish(first, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    second = _create(researcher, prompt_set, judge_model, [iteration_1], base)
    _finish(second, PreferLongerJudge(), monkeypatch, settings, tmp_path)

    page = researcher_client.get("/evaluations/leaderboard/", {"judge": judge_model.pk}).content.decode()
    assert "2 evaluations · 10 comparisons" in page
    page = page[page.index('id="leaderboard"'):]
    order = [page.index(f"spin-iter1 (artifact #{iteration_1.pk})"), page.index(f"spin-iter0 (artifact #{iteration_0.pk})"),
             page.index(f"base (artifact #{base.pk})")]
    assert order == sorted(order), "iter1 (all wins) above iter0 (3 of 5) above the base"


def test_model_answers_are_recorded_in_the_answer_cache_table(researcher, prompt_set, judge_model, tmp_path, monkeypatch, settings):
    from pipelines.evaluation.cache import AnswerCache

    model = model_ensure_embedded()
    config, descriptions, baseline = services.evaluation_config_build(
        candidate_models=[model], candidate_artifacts=[], baseline_model=None,
        baseline_artifact=_answers(tmp_path, "o", lambda p: "x"), judge=judge_model, bootstrap_rounds=200,
        judge_method="text",
    )
    # The model's answers are already in the cache directory, so the handler loads no model to answer.
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    contestant = config.candidates[0]
    for prompt in PROMPTS:
        AnswerCache(services.answer_cache_dir()).put(contestant.model_key, contestant.decoding_key, prompt,
                                                     {"answer": f"cached {prompt}", "completion_tokens": 3})
    evaluation = services.evaluation_create(user=researcher, config=config, candidates=descriptions, baseline=baseline,
                                            judge=judge_model, prompt_set=prompt_set)
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    assert evaluation.run.summary["answers_reused"] == 2 * len(PROMPTS) and evaluation.run.summary["answers_generated"] == 0
    assert CachedAnswer.objects.filter(model=model).count() == len(PROMPTS)
    assert services.cached_answer_count(config=config, prompts=PROMPTS) == {contestant.label: len(PROMPTS)}


def test_human_judges_from_the_result_page_and_their_agreement_with_the_llm_judge(
    researcher, researcher_client, annotator, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    """Result page -> campaign over the evaluation's pairs -> an annotator's verdicts -> the agreement table."""
    from webapp.annotation import services as annotation_services
    from webapp.library.models import Rubric

    evaluation = _create(researcher, prompt_set, judge_model, [_answers(tmp_path, "n", lambda p: p * 2)],
                         _answers(tmp_path, "o", lambda p: p))
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    response = researcher_client.post(f"/evaluations/{evaluation.pk}/human-judging/")
    artifact = Artifact.objects.get(name="human-judging-pairs")
    assert response.status_code == 302 and response["Location"] == f"/annotation/new/?artifact={artifact.pk}"

    campaign = annotation_services.campaign_create(
        user=researcher, name="humans", artifact=artifact, rubric=Rubric.objects.create(name="r", criteria="c"),
        sample_size=len(PROMPTS), overlap=1, assignees=[annotator], seed=1,
    )
    # The annotator agrees with the LLM judge (candidate "a" better) on every item but the first.
    for index in range(len(PROMPTS)):
        item = annotation_services.assignment_next(campaign=campaign, annotator=annotator)
        wants_a = index > 0
        choice = "left" if item.a_on_left == wants_a else "right"
        annotation_services.judgment_submit(campaign=campaign, annotator=annotator, item_id=item.pk, choice=choice,
                                            submission_key=f"key-{index:06d}")
    page = researcher_client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert 'id="human-judging-results"' in page
    agreed = len(PROMPTS) - 1
    # One annotator per item: no majority yet, so the agreement is reported against the single judgments.
    assert f'data-single-judgment="{agreed}/{len(PROMPTS)}">80% ({agreed}/{len(PROMPTS)})' in page
    assert f"({agreed}/{len(PROMPTS)})</td>\n        <td>" not in page, "not as agreement with a majority"


# --- judge method, position bias, single-order prompts, the LC standard error ---------------------------


class LogprobJudge(PreferLongerJudge):
    """Reports next-token probabilities instead of text: 0.7 on the longer response's label, 0.2 on the other, 0.1 tie."""

    name = "logprob-longer"

    def chat_next_token_logprobs(self, conversations, *, top_k=20, always_include=()):
        import math

        results = []
        for conversation in conversations:
            response_a, response_b = responses_to_judge(conversation)
            longer, shorter = ("A", "B") if len(response_a) >= len(response_b) else ("B", "A")
            results.append({longer: math.log(0.7), f" {shorter}": math.log(0.2), "tie": math.log(0.1)})
        return results


class UnreadableOnceJudge(PreferLongerJudge):
    """Like PreferLongerJudge, but unreadable whenever the baseline's "no" answer is shown first."""

    name = "unreadable-once"

    def chat(self, conversations, params):
        outputs = super().chat(conversations, params)
        for index, conversation in enumerate(conversations):
            if "## Response A\n\nno\n\n" in conversation[-1]["content"]:
                outputs[index] = [Completion("hmm, hard to say", 10, 1)]
        return outputs


def test_a_first_position_judge_is_warned_about_beside_the_headline_and_in_the_run_summary(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    evaluation = _create(researcher, prompt_set, judge_model, [_answers(tmp_path, "n", lambda p: "yes")],
                         _answers(tmp_path, "o", lambda p: "no"))
    evaluation = _finish(evaluation, FirstPositionJudge(), monkeypatch, settings, tmp_path)
    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert 'class="card error position-bias-warning"' in page
    assert "chose the\n  first position in 100% of its 10 decided judgments" in page
    assert 'data-position-share="1.0">100% first' in page
    summary = evaluation.run.summary
    assert summary[f"{evaluation.results['candidates']['c0']['label']}: same position chosen"].startswith("100% first of 10")
    run_page = researcher_client.get(evaluation.run.get_absolute_url()).content.decode()
    assert "position bias" in run_page


def test_an_unbiased_judge_gets_no_position_bias_warning(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    long_on = set(PROMPTS[:3])
    candidate = _answers(tmp_path, "new", lambda p: "a long and detailed answer" if p in long_on else "no")
    evaluation = _create(researcher, prompt_set, judge_model, [candidate], _answers(tmp_path, "old", lambda p: "a medium answer"))
    evaluation = _finish(evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert "position-bias-warning" not in page
    assert 'data-position-share="0.5">50% first' in page
    # Item 10: the LC win rate's uncertainty is the bootstrap's, and it is not 0 for varied preferences.
    lc = evaluation.results["candidates"]["c0"]["length_controlled"]
    assert lc["bootstrap_rounds"] > 0 and lc["standard_error"] > 0 and lc["prediction_spread"] == 0
    assert f'data-lc-se="{lc["standard_error"]}"' in page and "bootstrap standard error" in page


def test_prompts_read_in_one_order_only_are_counted_on_the_page_and_in_the_summary(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    # The candidate is longer than "no" on every prompt but the first, whose baseline answer is "no" too... so
    # make the baseline "no" on two prompts: shown first, the judge cannot read it; shown second, it can.
    baseline = _answers(tmp_path, "old", lambda p: "no" if p in PROMPTS[:2] else "a medium answer")
    candidate = _answers(tmp_path, "new", lambda p: "a long and detailed answer")
    evaluation = _create(researcher, prompt_set, judge_model, [candidate], baseline, judge_retries=0)
    evaluation = _finish(evaluation, UnreadableOnceJudge(), monkeypatch, settings, tmp_path)
    statistics = evaluation.results["candidates"]["c0"]
    assert statistics["single_order_prompts"] == 2 and statistics["win_rate_both_orders"]["prompts"] == 3
    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert 'data-single-order="2">2' in page and "both orders only: 100.0% of 3" in page
    filtered = researcher_client.get(evaluation.get_absolute_url(), {"filter": "single_order"}).content.decode()
    assert filtered.count('data-prompt="') == 2 and "one order only" in filtered
    assert evaluation.run.summary[f"{statistics['label']}: prompts read in one order only"] == 2


def test_the_result_page_says_the_logprob_judge_was_used_and_shows_graded_judgments(
    researcher, researcher_client, prompt_set, judge_model, tmp_path, monkeypatch, settings
):
    candidate = _answers(tmp_path, "new", lambda p: "a long and detailed answer")
    evaluation = _create(researcher, prompt_set, judge_model, [candidate], _answers(tmp_path, "old", lambda p: "no"),
                         judge_method="logprob")
    evaluation = _finish(evaluation, LogprobJudge(), monkeypatch, settings, tmp_path)
    statistics = evaluation.results["candidates"]["c0"]
    # Each order: P(candidate) 0.7 + P(tie) 0.1 / 2 = 0.75.
    assert statistics["win_rate"]["win_rate"] == pytest.approx(75.0) and statistics["parse_failures"] == 0
    assert evaluation.results["judge_method"] == "logprob"
    page = researcher_client.get(evaluation.get_absolute_url()).content.decode()
    assert 'id="judge-method" data-method="logprob"' in page and "log-probabilities" in page
    assert "(0.750)" in page
    text_evaluation = _create(researcher, prompt_set, judge_model, [candidate], _answers(tmp_path, "old2", lambda p: "no"))
    text_evaluation = _finish(text_evaluation, PreferLongerJudge(), monkeypatch, settings, tmp_path)
    assert 'id="judge-method" data-method="text"' in researcher_client.get(text_evaluation.get_absolute_url()).content.decode()


def test_the_form_offers_the_logprob_judge_as_the_default(researcher_client):
    page = researcher_client.get("/evaluations/new/").content.decode()
    assert 'name="judge_method"' in page
    assert '<option value="logprob" selected>' in page

"""The pairwise judge: verdict parsing, both-order judging, and retries of unreadable replies.

The judges here are small real `LLMBackend` implementations with fixed behaviour (always the first
position, always the candidate, unreadable first), because the logic under test is what we do with
a judge's replies, not what a model says.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.evaluation import Contestant, EvaluationConfig, EvaluationInputs, JudgeConfig, run_evaluation
from pipelines.evaluation.inspect import evaluation_results
from pipelines.evaluation.judge import JudgeRequest, candidate_outcome, judge_batch, judge_conversation, parse_verdict
from pipelines.llm.loader import LocalBackends
from pipelines.llm.types import Completion, Conversation, LLMBackend, SamplingParams
from tests.fixtures.judges import responses_to_judge


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A", "A"),
        ("B", "B"),
        (" b ", None),  # a lower-case b alone is not one of the labels we asked for
        ("B.", "B"),
        ("**A**", "A"),
        ("[[B]]", "B"),
        ("[[C]]", "tie"),
        ("(A)", "A"),
        ("Response B", "B"),
        ("Output A.", "A"),
        ("tie", "tie"),
        ("Tie.", "tie"),
        ("It is a tie: both are fine.", "tie"),
        ("The better response is B.", "B"),
        ("Verdict: A", "A"),
        ("My answer: Response B", "B"),
        ("Response A is better because it is correct.", "A"),
        ("B\nBecause response B answers the question.", "B"),
        ("A good answer would explain the history.", None),  # the article, not a vote
        ("Both A and B have merits.", None),
        ("", None),
        ("I cannot decide.", None),
        ("ABBA", None),
    ],
)
def test_parse_verdict_reads_what_the_judge_stated_and_never_guesses(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_outcomes_are_read_from_the_candidates_side_in_each_order():
    assert candidate_outcome("A", "candidate_first") == "win"
    assert candidate_outcome("A", "baseline_first") == "loss"
    assert candidate_outcome("B", "baseline_first") == "win"
    assert candidate_outcome("tie", "baseline_first") == "tie"
    assert candidate_outcome(None, "candidate_first") is None


def test_the_judge_prompt_holds_the_instruction_both_responses_and_the_rubric_criteria():
    conversation = judge_conversation(JudgeConfig(criteria="Prefer answers in French."), "Say hi", "Bonjour", "Hello")
    user = conversation[-1]["content"]
    assert conversation[0]["role"] == "system"
    assert (
        user.index("Say hi")
        < user.index("## Response A")
        < user.index("Bonjour")
        < user.index("## Response B")
        < user.index("Hello")
    )
    assert "Prefer answers in French." in user and "A, B or tie" in user


class ScriptedJudge:
    """A judge whose reply is a function of (response A, response B, call number)."""

    name = "scripted-judge"

    def __init__(self, decide) -> None:
        self.decide = decide
        self.calls: list[SamplingParams] = []
        self.replies = 0

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append(params)
        outputs = []
        for conversation in conversations:
            response_a, response_b = responses_to_judge(conversation)
            self.replies += 1
            outputs.append([Completion(self.decide(response_a, response_b, len(self.calls)), 10, 1)])
        return outputs

    def complete(self, prompts, params):  # pragma: no cover - the judge only chats
        raise NotImplementedError

    def close(self) -> None:
        pass


PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello.", "Count to three."]


def _answers_file(path: Path, prefix: str) -> Path:
    path.write_text(
        "".join(json.dumps({"instruction": p, "output": f"{prefix} answer to {p}"}) + "\n" for p in PROMPTS)
    )
    return path


SCRIPTED_JUDGE_SPEC = {"kind": "scripted", "path": "scripted-judge"}


def _inputs(tmp_path: Path) -> EvaluationInputs:
    return EvaluationInputs(answer_cache_dir=tmp_path / "cache")


def _judged_by(tmp_path: Path, judge: LLMBackend) -> LocalBackends:
    """A loader that hands out the scripted judge for the judge's spec (the contestants are answer files)."""
    return LocalBackends(tmp_path / "models", given={SCRIPTED_JUDGE_SPEC["path"]: judge})


def _evaluate(tmp_path: Path, judge: ScriptedJudge, judge_config: JudgeConfig | None = None, judge_batch_size: int = 3):
    """Evaluate the NEW answers against the OLD ones with `judge` (text verdicts, 2 retries, unless `judge_config`)."""
    store = RunStore(tmp_path / "run")
    store.write_jsonl(({"prompt_id": f"p{i}", "prompt": p} for i, p in enumerate(PROMPTS)), "prompts.jsonl")
    config = EvaluationConfig(
        candidates=(
            Contestant("c0", "new", kind="answers", answers_path=str(_answers_file(tmp_path / "new.jsonl", "NEW"))),
        ),
        baseline=Contestant(
            "baseline", "old", kind="answers", answers_path=str(_answers_file(tmp_path / "old.jsonl", "OLD"))
        ),
        judge_spec=SCRIPTED_JUDGE_SPEC,
        judge=judge_config or JudgeConfig(method="text", retries=2),
        judge_batch_size=judge_batch_size,
        bootstrap_rounds=200,
        lc_bootstrap_rounds=10,
    )
    run_evaluation(config, _inputs(tmp_path), _judged_by(tmp_path, judge), store, RecordingProgress())
    return evaluation_results(store), list(store.read_jsonl("rows/c0.jsonl"))


def test_a_judge_that_always_picks_position_a_gives_a_fifty_percent_win_rate(tmp_path):
    results, rows = _evaluate(tmp_path, ScriptedJudge(lambda a, b, call: "A"))
    statistics = results["candidates"]["c0"]
    assert statistics["win_rate"]["win_rate"] == 50
    assert statistics["position_disagreements"] == len(PROMPTS)
    assert statistics["first_position_share"] == 1
    assert all(row["preference"] == 0.5 and row["position_disagreement"] for row in rows)
    assert statistics["parse_failures"] == 0 and statistics["judge_calls"] == 2 * len(PROMPTS)


def test_a_judge_that_prefers_the_candidate_in_both_orders_gives_a_full_win(tmp_path):
    judge = ScriptedJudge(lambda a, b, call: "A" if a.startswith("NEW") else "B")
    results, rows = _evaluate(tmp_path, judge)
    statistics = results["candidates"]["c0"]
    assert statistics["win_rate"]["win_rate"] == 100 and statistics["win_rate"]["wins"] == 2 * len(PROMPTS)
    assert {row["verdict_candidate_first"] for row in rows} == {"A"}
    assert {row["verdict_baseline_first"] for row in rows} == {"B"}
    assert statistics["position_disagreements"] == 0


def test_unreadable_replies_are_retried_with_sampling_and_then_read(tmp_path):
    judge = ScriptedJudge(
        lambda a, b, call: "I think both are nice" if call == 1 else ("A" if a.startswith("NEW") else "B")
    )
    results, rows = _evaluate(tmp_path, judge, judge_batch_size=8)
    statistics = results["candidates"]["c0"]
    assert statistics["parse_failures"] == 0 and statistics["retried_judgments"] == 2 * len(PROMPTS)
    assert statistics["judge_calls"] == 4 * len(PROMPTS)
    assert judge.calls[0].temperature == 0 and judge.calls[1].temperature == 0.7
    assert rows[0]["judge_replies_candidate_first"] == ["I think both are nice", "A"]


def test_replies_that_stay_unreadable_are_counted_and_kept_out_of_the_statistics_never_dropped(tmp_path):
    # The first prompt's replies are never readable; every other judgment favours the candidate.
    judge = ScriptedJudge(lambda a, b, call: "hmm" if "2 + 2" in a else ("A" if a.startswith("NEW") else "B"))
    results, rows = _evaluate(tmp_path, judge, JudgeConfig(method="text", retries=1))
    statistics = results["candidates"]["c0"]
    assert len(rows) == len(PROMPTS), "an unjudged prompt keeps its row"
    assert rows[0]["preference"] is None and rows[0]["unparsed_orders"] == 2
    assert rows[0]["judge_replies_candidate_first"] == ["hmm", "hmm"]
    assert statistics["parse_failures"] == 2 and statistics["unjudged_prompts"] == 1
    assert statistics["win_rate"]["prompts"] == len(PROMPTS) - 1 and statistics["win_rate"]["win_rate"] == 100


def test_judge_batch_gives_every_request_a_result_in_order():
    judge = ScriptedJudge(lambda a, b, call: "B")
    requests = [
        JudgeRequest(f"k{i}", "q", "cand", "base", order)
        for i, order in enumerate(["candidate_first", "baseline_first"])
    ]
    results = judge_batch(JudgeConfig(method="text"), judge, requests)
    assert [(r.key, r.outcome) for r in results] == [("k0", "loss"), ("k1", "win")]


# --- position bias, single-order prompts, the log-prob judge ---------------------------------------


def test_a_judge_that_always_picks_one_position_is_flagged_as_position_biased(tmp_path):
    results, _ = _evaluate(tmp_path, ScriptedJudge(lambda a, b, call: "A"))
    bias = results["candidates"]["c0"]["position_bias"]
    assert bias["warning"] is True
    assert (bias["favoured"], bias["same_position_share"], bias["decided"]) == ("first", 1.0, 2 * len(PROMPTS))


def test_position_bias_counts_decided_judgments_only_and_warns_above_the_threshold():
    from pipelines.evaluation.stats import position_bias

    at_threshold = position_bias(["A"] * 8 + ["B"] * 2 + ["tie"] * 5)
    assert (at_threshold["decided"], at_threshold["same_position_share"], at_threshold["warning"]) == (10, 0.8, False)
    above = position_bias(["B"] * 9 + ["A"] + ["tie"] * 30)
    assert (above["favoured"], above["same_position_share"], above["warning"]) == ("second", 0.9, True)
    assert position_bias(["tie", "tie"])["warning"] is False


def test_a_prompt_read_in_one_order_only_is_flagged_and_counted(tmp_path):
    # Prompt 0 is unreadable whenever the baseline is shown first; everything else favours the candidate.
    def decide(a, b, call):
        if a.startswith("OLD") and "2 + 2" in a:
            return "hmm"
        return "A" if a.startswith("NEW") else "B"

    results, rows = _evaluate(tmp_path, ScriptedJudge(decide), JudgeConfig(method="text", retries=0))
    statistics = results["candidates"]["c0"]
    assert rows[0]["single_order"] is True and rows[0]["unparsed_orders"] == 1
    assert not any(row["single_order"] for row in rows[1:])
    assert statistics["single_order_prompts"] == 1
    # The headline keeps the prompt; the win rate over prompts read in both orders leaves it out.
    assert statistics["win_rate"]["prompts"] == len(PROMPTS)
    assert statistics["win_rate_both_orders"]["prompts"] == len(PROMPTS) - 1


class ScriptedScorer(ScriptedJudge):
    """A judge backend that reports next-token log-probabilities from a function of (response A, response B)."""

    name = "scripted-scorer"

    def __init__(self, distribution) -> None:
        super().__init__(lambda a, b, call: "unused")
        self.distribution = distribution
        self.scored = 0

    def chat_next_token_logprobs(self, conversations, *, top_k=20, always_include=()):
        results = []
        for conversation in conversations:
            response_a, response_b = responses_to_judge(conversation)
            self.scored += 1
            results.append({text: math.log(p) for text, p in self.distribution(response_a, response_b).items()})
        return results


def test_the_logprob_judge_reads_the_probability_mass_on_the_verdict_tokens(tmp_path):
    # The first position gets 0.3 + 0.1 (two tokens), the second 0.2, tie 0.1; the rest is other tokens.
    scorer = ScriptedScorer(lambda a, b: {"A": 0.3, " A": 0.1, "B": 0.2, " tie": 0.1, "The": 0.25, "I": 0.05})
    results, rows = _evaluate(tmp_path, scorer, JudgeConfig(method="logprob"))
    statistics = results["candidates"]["c0"]
    assert scorer.calls == [], "nothing is generated"
    assert scorer.scored == 2 * len(PROMPTS)
    # Normalized over the verdict tokens (0.7): A 4/7, B 2/7, tie 1/7. Candidate first: 4/7 + 1/14 = 9/14.
    assert rows[0]["preference_candidate_first"] == pytest.approx(9 / 14, abs=1e-6)
    assert rows[0]["preference_baseline_first"] == pytest.approx(2 / 7 + 1 / 14, abs=1e-6)
    assert rows[0]["preference"] == pytest.approx(0.5, abs=1e-6)
    assert rows[0]["verdict_probabilities_candidate_first"] == pytest.approx(
        {"A": 4 / 7, "B": 2 / 7, "tie": 1 / 7}, abs=1e-6
    )
    assert statistics["parse_failures"] == 0 and statistics["judge_method"] == "logprob"
    assert statistics["win_rate"]["win_rate"] == pytest.approx(50, abs=1e-4)
    assert statistics["position_bias"]["warning"] is True  # the most probable label is always A


def test_the_logprob_judge_without_any_verdict_token_reports_the_judgment_unreadable(tmp_path):
    def distribution(a, b):
        if a.startswith("OLD") and "2 + 2" in a:
            return {"The": 0.6, "I": 0.4}
        return {"A": 0.9, "B": 0.1} if a.startswith("NEW") else {"A": 0.1, "B": 0.9}

    results, rows = _evaluate(tmp_path, ScriptedScorer(distribution), JudgeConfig(method="logprob"))
    statistics = results["candidates"]["c0"]
    assert rows[0]["verdict_baseline_first"] is None and rows[0]["single_order"] is True
    assert rows[0]["preference"] == pytest.approx(0.9)
    assert statistics["parse_failures"] == 1 and statistics["single_order_prompts"] == 1


def test_verdict_from_logprobs_matches_alpaca_evals_ratio_and_needs_a_verdict_token():
    from pipelines.evaluation.judge import verdict_from_logprobs

    # AlpacaEval's weighted annotator: P(m) / (P(m) + P(M)) from top_logprobs; here A / (A + B + tie).
    probabilities, mass = verdict_from_logprobs({"A": math.log(0.75), " B": math.log(0.25), "Both": -20.0})
    assert probabilities == pytest.approx({"A": 0.75, "B": 0.25, "tie": 0.0})
    assert mass == pytest.approx(1.0, abs=1e-6)
    assert verdict_from_logprobs({"The": -0.1, "a": -3.0}) is None  # lower-case a is the article


def test_judge_config_defaults_to_logprob_reads_old_configs_as_text_and_refuses_other_methods():
    from pipelines.errors import InvalidConfigError

    assert JudgeConfig().method == "logprob"
    assert JudgeConfig.from_dict(JudgeConfig(method="logprob").to_dict()).method == "logprob"
    stored_before = {key: value for key, value in JudgeConfig().to_dict().items() if key != "method"}
    assert JudgeConfig.from_dict(stored_before).method == "text"
    with pytest.raises(InvalidConfigError, match="judge.method"):
        JudgeConfig(method="vibes")


def test_the_logprob_judge_refuses_a_backend_without_log_probabilities():
    from pipelines.errors import InvalidConfigError

    requests = [JudgeRequest("k0", "q", "cand", "base", "candidate_first")]
    with pytest.raises(InvalidConfigError, match="parsed-text judge"):
        judge_batch(JudgeConfig(method="logprob"), ScriptedJudge(lambda a, b, call: "A"), requests)

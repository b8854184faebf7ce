"""The pairwise judge: verdict parsing, both-order judging, and retries of unreadable replies.

The judges here are small real `LLMBackend` implementations with fixed behaviour (always the first
position, always the candidate, unreadable first), because the logic under test is what we do with
a judge's replies, not what a model says.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipelines.common.progress import NullProgress
from pipelines.common.store import RunStore
from pipelines.evaluation import Contestant, EvaluationConfig, JudgeConfig, run_evaluation
from pipelines.evaluation.judge import JudgeRequest, candidate_outcome, judge_batch, judge_conversation, parse_verdict
from pipelines.llm.types import Completion, Conversation, SamplingParams


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
    assert user.index("Say hi") < user.index("## Response A") < user.index("Bonjour") < user.index("## Response B") < user.index("Hello")
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
            user = conversation[-1]["content"]
            response_a = user.split("## Response A\n\n")[1].split("\n\n## Response B")[0]
            response_b = user.split("## Response B\n\n")[1].split("\n\n## Criteria")[0]
            self.replies += 1
            outputs.append([Completion(self.decide(response_a, response_b, len(self.calls)), 10, 1)])
        return outputs

    def complete(self, prompts, params):  # pragma: no cover - the judge only chats
        raise NotImplementedError

    def close(self) -> None:
        pass


PROMPTS = ["What is 2 + 2?", "Name a colour.", "Say hello.", "Count to three."]


def _answers_file(path: Path, prefix: str) -> Path:
    path.write_text("".join(json.dumps({"instruction": p, "output": f"{prefix} answer to {p}"}) + "\n" for p in PROMPTS))
    return path


def _evaluate(tmp_path: Path, judge: ScriptedJudge, retries: int = 2, judge_batch_size: int = 3):
    store = RunStore(tmp_path / "run")
    store.write_jsonl(({"prompt_id": f"p{i}", "prompt": p} for i, p in enumerate(PROMPTS)), "prompts.jsonl")
    config = EvaluationConfig(
        candidates=(Contestant("c0", "new", kind="answers", answers_path=str(_answers_file(tmp_path / "new.jsonl", "NEW"))),),
        baseline=Contestant("baseline", "old", kind="answers", answers_path=str(_answers_file(tmp_path / "old.jsonl", "OLD"))),
        judge_spec={"kind": "scripted"},
        judge=JudgeConfig(retries=retries),
        judge_batch_size=judge_batch_size,
        bootstrap_rounds=200,
        lc_bootstrap_rounds=10,
    )
    result = run_evaluation(config, store, NullProgress(), backend_for=lambda spec: judge, cache_dir=tmp_path / "cache")
    return result, list(store.read_jsonl("rows/c0.jsonl"))


def test_a_judge_that_always_picks_position_a_gives_a_fifty_percent_win_rate(tmp_path):
    result, rows = _evaluate(tmp_path, ScriptedJudge(lambda a, b, call: "A"))
    statistics = result.results["candidates"]["c0"]
    assert statistics["win_rate"]["win_rate"] == 50
    assert statistics["position_disagreements"] == len(PROMPTS)
    assert statistics["first_position_share"] == 1
    assert all(row["preference"] == 0.5 and row["position_disagreement"] for row in rows)
    assert statistics["parse_failures"] == 0 and statistics["judge_calls"] == 2 * len(PROMPTS)


def test_a_judge_that_prefers_the_candidate_in_both_orders_gives_a_full_win(tmp_path):
    judge = ScriptedJudge(lambda a, b, call: "A" if a.startswith("NEW") else "B")
    result, rows = _evaluate(tmp_path, judge)
    statistics = result.results["candidates"]["c0"]
    assert statistics["win_rate"]["win_rate"] == 100 and statistics["win_rate"]["wins"] == 2 * len(PROMPTS)
    assert {row["verdict_candidate_first"] for row in rows} == {"A"}
    assert {row["verdict_baseline_first"] for row in rows} == {"B"}
    assert statistics["position_disagreements"] == 0


def test_unreadable_replies_are_retried_with_sampling_and_then_read(tmp_path):
    judge = ScriptedJudge(lambda a, b, call: "I think both are nice" if call == 1 else ("A" if a.startswith("NEW") else "B"))
    result, rows = _evaluate(tmp_path, judge, judge_batch_size=8)
    statistics = result.results["candidates"]["c0"]
    assert statistics["parse_failures"] == 0 and statistics["retried_judgments"] == 2 * len(PROMPTS)
    assert statistics["judge_calls"] == 4 * len(PROMPTS)
    assert judge.calls[0].temperature == 0 and judge.calls[1].temperature == 0.7
    assert rows[0]["judge_replies_candidate_first"] == ["I think both are nice", "A"]


def test_replies_that_stay_unreadable_are_counted_and_kept_out_of_the_statistics_never_dropped(tmp_path):
    # The first prompt's replies are never readable; every other judgment favours the candidate.
    judge = ScriptedJudge(lambda a, b, call: "hmm" if "2 + 2" in a else ("A" if a.startswith("NEW") else "B"))
    result, rows = _evaluate(tmp_path, judge, retries=1)
    statistics = result.results["candidates"]["c0"]
    assert len(rows) == len(PROMPTS), "an unjudged prompt keeps its row"
    assert rows[0]["preference"] is None and rows[0]["unparsed_orders"] == 2
    assert rows[0]["judge_replies_candidate_first"] == ["hmm", "hmm"]
    assert statistics["parse_failures"] == 2 and statistics["unjudged_prompts"] == 1
    assert statistics["win_rate"]["prompts"] == len(PROMPTS) - 1 and statistics["win_rate"]["win_rate"] == 100


def test_judge_batch_gives_every_request_a_result_in_order():
    judge = ScriptedJudge(lambda a, b, call: "B")
    requests = [JudgeRequest(f"k{i}", "q", "cand", "base", order) for i, order in enumerate(["candidate_first", "baseline_first"])]
    results = judge_batch(JudgeConfig(), judge, requests)
    assert [(r.key, r.outcome) for r in results] == [("k0", "loss"), ("k1", "win")]

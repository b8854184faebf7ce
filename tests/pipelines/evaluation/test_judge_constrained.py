"""The text judge under `constrained_output`: a random-weight judge's every reply is a verdict, at the first attempt."""

from __future__ import annotations

import pytest

from pipelines.evaluation.judge import JudgeConfig, JudgeRequest, judge_batch_text
from pipelines.llm.types import SamplingParams

REQUESTS = [
    JudgeRequest(
        key=f"p{index}", instruction=f"Question {index}?", candidate_answer="Yes.", baseline_answer="No.", order=order
    )
    for index in range(3)
    for order in ("candidate_first", "baseline_first")
]


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", batch_size=8, torch_threads=2)
    yield backend
    backend.close()


def _config(constrained: bool) -> JudgeConfig:
    return JudgeConfig(
        method="text", retries=0, sampling=SamplingParams(temperature=0.0, max_tokens=8), constrained_output=constrained
    )


def test_the_constrained_text_judge_reads_every_verdict_at_the_first_attempt(tiny_backend):
    results = judge_batch_text(_config(True), tiny_backend, REQUESTS, seed=1)
    assert all(result.verdict in ("A", "B", "tie") for result in results), [result.replies for result in results]
    assert all(result.attempts == 1 and result.replies[0] in ("A", "B", "tie") for result in results)


def test_the_unconstrained_random_judge_leaves_verdicts_unparsed(tiny_backend):
    results = judge_batch_text(_config(False), tiny_backend, REQUESTS, seed=1)
    assert any(result.verdict is None for result in results)


def test_stored_text_judge_configs_from_before_grammars_stay_unconstrained():
    assert JudgeConfig.from_dict({"method": "text"}).constrained_output is False
    assert JudgeConfig.from_dict(_config(True).to_dict()).constrained_output is True
    # The log-prob judge generates no text: its stored config (and the digests made from it) is unchanged.
    assert "constrained_output" not in JudgeConfig(method="logprob").to_dict()

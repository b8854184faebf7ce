"""Tokens reported while a model call runs: the transformers backend step by step, the OpenAI one per request."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.common.progress import RecordingProgress, StagePrefix
from pipelines.llm import token_progress
from pipelines.llm.token_progress import CallTokens, report_tokens_to
from pipelines.llm.types import SamplingParams


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", batch_size=4)
    yield backend
    backend.close()


@pytest.fixture
def every_step(monkeypatch):
    """No throttle: every decoding step reports, so a short call shows its whole course."""
    monkeypatch.setattr(token_progress, "REPORT_INTERVAL_SECONDS", 0.0)


def _assert_rises_to_the_budget(reports: list[tuple[int, int]], budget: int) -> None:
    counts = [done for done, _ in reports]
    assert {total for _, total in reports} == {budget}
    assert counts[0] == 0 and counts[-1] == budget
    assert counts == sorted(counts), counts
    assert any(0 < count < budget for count in counts), "nothing reported while the call decoded"


def test_the_transformers_backend_reports_increasing_tokens_ending_at_the_budget(tiny_backend, every_step):
    progress = RecordingProgress()
    report_tokens_to(tiny_backend, progress)
    try:
        prompts = [f"Item {index}:" + " word" * index for index in range(6)]
        # 6 prompts x 2 samples = 12 rows in batches of at most 4 rows, 8 new tokens each.
        tiny_backend.complete(prompts, SamplingParams(n=2, temperature=1.0, max_tokens=8, seed=3))
    finally:
        tiny_backend.token_progress = None
    _assert_rises_to_the_budget(progress.call_reports, 6 * 2 * 8)
    # Within a batch the count moves step by step: more reports than batches.
    assert len(progress.call_reports) > 3 + 2


def test_greedy_decoding_counts_one_row_per_prompt_and_early_stops_fill_their_budget(tiny_backend, every_step):
    progress = RecordingProgress()
    tiny_backend.token_progress = progress.call_progress
    try:
        # Greedy: one row per prompt whatever n is. A stop string ends rows early; their rest counts as done.
        tiny_backend.complete(["a", "b b", "c c c"], SamplingParams(n=3, temperature=0, max_tokens=6, stop=(" ",)))
    finally:
        tiny_backend.token_progress = None
    _assert_rises_to_the_budget(progress.call_reports, 3 * 6)


def test_a_backend_without_a_listener_counts_nothing(tiny_backend, monkeypatch):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no listener: nothing is counted")

    monkeypatch.setattr(token_progress.CallTokens, "__init__", refuse)
    assert tiny_backend.token_progress is None
    tiny_backend.complete(["hello"], SamplingParams(temperature=0, max_tokens=2))


def test_reports_are_throttled_but_the_start_and_the_end_always_go_out():
    reports: list[tuple[int, int]] = []
    tokens = CallTokens(lambda done, budget: reports.append((done, budget)), budget=100, interval=60.0)
    for step in range(50):
        tokens.running(step)
    tokens.part_finished(50)
    tokens.end()
    assert reports == [(0, 100), (100, 100)]


def test_stage_prefix_passes_call_progress_through_and_odd_progress_objects_are_left_alone():
    inner = RecordingProgress()
    StagePrefix(inner, "iter 1 · ").call_progress(5, 10)
    assert inner.call_reports == [(5, 10)]

    class Plain:
        token_progress = None

    backend = Plain()
    report_tokens_to(backend, object())  # a progress without call_progress
    assert backend.token_progress is None
    report_tokens_to(object(), inner)  # a backend without the hook: nothing to set, no error


def test_the_openai_backend_reports_each_returned_request_at_its_whole_budget(monkeypatch, every_step):
    from pipelines.llm.openai_backend import OpenAIBackend

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "served", max_concurrency=2)

    def answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
        choices = [{"index": k, "message": {"content": "ok"}, "finish_reason": "stop"} for k in range(body["n"])]
        return {"choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": body["n"]}}

    monkeypatch.setattr(backend, "_post", answer)
    progress = RecordingProgress()
    report_tokens_to(backend, progress)
    try:
        backend.chat(
            [[{"role": "user", "content": str(index)}] for index in range(3)], SamplingParams(n=2, max_tokens=5)
        )
    finally:
        backend.close()
    assert progress.call_reports == [(0, 30), (10, 30), (20, 30), (30, 30), (30, 30)]

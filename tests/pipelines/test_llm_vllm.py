"""VLLMBackend on a GPU with vLLM installed: the same interface guarantees as the other backends."""

from __future__ import annotations

import pytest

from pipelines.llm.types import SamplingParams

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def vllm_backend(embedded_model_dir):
    pytest.importorskip("vllm", reason="vLLM is not installed (requirements-gpu.txt on a GPU machine)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA GPU")
    from pipelines.llm.vllm_backend import VLLMBackend

    backend = VLLMBackend(embedded_model_dir, dtype="float16", gpu_memory_utilization=0.3, max_model_len=2048)
    yield backend
    backend.close()


def test_chat_answers_n_samples_per_conversation_with_token_counts(vllm_backend):
    results = vllm_backend.chat([QUESTION, QUESTION[:]], SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=0))
    assert [len(samples) for samples in results] == [3, 3]
    assert all(
        0 < sample.completion_tokens <= 16 and sample.prompt_tokens > 10 for samples in results for sample in samples
    )


def test_the_engine_reports_the_gpu_share_it_reserves_for_the_worker_cache(vllm_backend):
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    assert vllm_backend.memory_bytes == int(0.3 * total)


def test_n_samples_with_a_seed_differ_from_each_other(vllm_backend):
    samples = vllm_backend.complete(["Once upon a time"], SamplingParams(n=4, temperature=1.0, max_tokens=12, seed=1))[
        0
    ]
    assert len({sample.text for sample in samples}) > 1


def test_greedy_answer_is_correct_and_deterministic(vllm_backend):
    first = vllm_backend.chat([QUESTION], SamplingParams(temperature=0, max_tokens=12))[0][0]
    again = vllm_backend.chat([QUESTION], SamplingParams(temperature=0, max_tokens=12))[0][0]
    assert "Paris" in first.text and first.text == again.text


def test_same_seed_gives_the_same_samples(vllm_backend):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=42)
    first = vllm_backend.complete(["Once upon a time"], params)
    again = vllm_backend.complete(["Once upon a time"], params)
    assert [c.text for c in first[0]] == [c.text for c in again[0]]


def test_stop_string_is_cut_and_finishes_with_stop(vllm_backend):
    result = vllm_backend.complete(["1, 2, 3, 4, 5,"], SamplingParams(temperature=0, max_tokens=12, stop=(" 8",)))[0][0]
    assert " 8" not in result.text and result.finish_reason == "stop"


def test_next_token_logprobs_are_the_engines_top_k_of_one_greedy_token(vllm_backend):
    import math

    from pipelines.llm.types import supports_next_token_logprobs

    assert supports_next_token_logprobs(vllm_backend)
    judge = [
        {"role": "user", "content": "Which is better, A or B? Answer with one letter.\n\nA: Paris\nB: Rome\n\nAnswer:"}
    ]
    reported = vllm_backend.chat_next_token_logprobs([judge, QUESTION], top_k=5, always_include=("A", "B"))
    assert len(reported) == 2
    for logprobs in reported:
        # The top 5 (plus the greedy token, which is one of them at temperature 0), texts merged.
        assert 1 <= len(logprobs) <= 6
        assert all(value <= 0 for value in logprobs.values())
        assert sum(math.exp(value) for value in logprobs.values()) <= 1 + 1e-4

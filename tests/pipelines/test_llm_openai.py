"""OpenAIBackend against a real `transformers serve` process serving the embedded model on localhost."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines.errors import BackendUnavailableError, InvalidConfigError
from pipelines.llm.openai_backend import OpenAIBackend
from pipelines.llm.types import SamplingParams

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SERVER_START_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _transformers_cli() -> str:
    beside_python = Path(sys.executable).parent / "transformers"
    found = str(beside_python) if beside_python.exists() else shutil.which("transformers")
    if not found:
        pytest.skip("the `transformers` command is not installed")
    return found


@pytest.fixture(scope="module")
def served_model(embedded_model_dir, tmp_path_factory):
    """`transformers serve` pinned to the embedded model; yields (base_url, served model name)."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs its extras: pip install -r requirements-serving.txt")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("transformers-serve") / "serve.log"
    command = [_transformers_cli(), "serve", str(embedded_model_dir), "--device", "cpu", "--dtype", "float32"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--default-seed", "0"]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"transformers serve exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"transformers serve did not start in {SERVER_START_SECONDS}s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(embedded_model_dir)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def backend(served_model):
    base_url, model_name = served_model
    backend = OpenAIBackend(base_url, model_name, max_concurrency=2, timeout=120)
    yield backend
    backend.close()


@pytest.mark.slow
def test_chat_answers_with_usage_token_counts_and_finish_reason(backend):
    answer = backend.chat([QUESTION], SamplingParams(temperature=0, max_tokens=12))[0]
    assert len(answer) == 1
    assert "Paris" in answer[0].text
    assert answer[0].prompt_tokens > 10
    assert 0 < answer[0].completion_tokens <= 12
    assert answer[0].finish_reason in ("stop", "length")


@pytest.mark.slow
def test_a_server_that_ignores_n_still_gets_n_distinct_seeded_samples_per_prompt(backend):
    # transformers serve answers one choice whatever n says: the backend asks again with a shifted seed.
    conversations = [QUESTION, [{"role": "user", "content": "Name a fruit."}]]
    results = backend.chat(conversations, SamplingParams(n=2, temperature=1.0, max_tokens=6, seed=3))
    assert [len(samples) for samples in results] == [2, 2]
    assert all(sample.completion_tokens <= 6 for samples in results for sample in samples)
    assert any(samples[0].text != samples[1].text for samples in results)


def _record_request_times(backend, monkeypatch) -> list[tuple[float, float, dict]]:
    """Wrap the backend's HTTP call to note when each request went out and when its answer came back."""
    spans: list[tuple[float, float, dict]] = []
    post = backend._post

    def timed_post(path, body):
        started = time.monotonic()
        try:
            return post(path, body)
        finally:
            spans.append((started, time.monotonic(), body))

    monkeypatch.setattr(backend, "_post", timed_post)
    return spans


def _overlapping_pairs(spans) -> int:
    return sum(
        1
        for i, (start, end, _) in enumerate(spans)
        for other_start, other_end, _ in spans[i + 1 :]
        if start < other_end and other_start < end
    )


@pytest.mark.slow
def test_requests_go_out_concurrently_and_answers_keep_the_input_order(served_model, monkeypatch):
    base_url, model_name = served_model
    backend = OpenAIBackend(base_url, model_name, max_concurrency=2, timeout=120)
    spans = _record_request_times(backend, monkeypatch)
    starts = [10, 20, 30, 40]
    try:
        results = backend.complete(
            [", ".join(str(start + i) for i in range(5)) + "," for start in starts],
            SamplingParams(temperature=0, max_tokens=4),  # " 15," is four tokens: digits split
        )
    finally:
        backend.close()
    assert [samples[0].text.split(",")[0].strip() for samples in results] == [str(start + 5) for start in starts]
    assert len(spans) == 4 and _overlapping_pairs(spans) >= 1, "requests should be in flight together"
    # Never more than max_concurrency at once.
    assert all(sum(1 for s, e, _ in spans if s <= start < e) <= 2 for start, _, _ in spans)


@pytest.mark.slow
def test_once_n_is_seen_ignored_the_missing_samples_go_out_as_concurrent_one_sample_requests(served_model, monkeypatch):
    base_url, model_name = served_model
    backend = OpenAIBackend(base_url, model_name, max_concurrency=3, timeout=120)
    spans = _record_request_times(backend, monkeypatch)
    try:
        samples = backend.chat([QUESTION], SamplingParams(n=4, temperature=1.0, max_tokens=3, seed=7))[0]
    finally:
        backend.close()
    assert len(samples) == 4 and backend.server_honours_n is False
    # First one request asking for all 4; transformers serve answers one, so the other 3 go out
    # together, request k of the prompt with seed 7 + k.
    first, *rest = sorted(spans, key=lambda span: span[0])
    assert (first[2]["n"], first[2]["seed"]) == (4, 7)
    assert sorted((body["n"], body["seed"]) for _, _, body in rest) == [(1, 8), (1, 9), (1, 10)]
    assert all(start >= first[1] for start, _, _ in rest) and _overlapping_pairs(rest) >= 1


@pytest.mark.slow
def test_raw_completion_stops_at_a_stop_string_which_is_left_out(backend):
    result = backend.complete(["1, 2, 3, 4, 5,"], SamplingParams(temperature=0, max_tokens=12, stop=(" 8",)))[0][0]
    assert result.text.startswith(" 6, 7,")
    assert " 8" not in result.text
    assert result.finish_reason == "stop"
    assert result.prompt_tokens > 5


@pytest.mark.slow
def test_a_wrong_model_name_is_a_config_error_naming_the_model(served_model):
    base_url, _ = served_model
    wrong = OpenAIBackend(base_url, "no-such-model")
    try:
        with pytest.raises(InvalidConfigError, match="no-such-model"):
            wrong.chat([QUESTION], SamplingParams(max_tokens=2))
    finally:
        wrong.close()


def test_an_unreachable_server_raises_backend_unavailable_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}/v1"
    backend = OpenAIBackend(url, "any", retries=1, retry_backoff_seconds=0.01, timeout=5)
    try:
        with pytest.raises(BackendUnavailableError, match=f"{url}/chat/completions"):
            backend.chat([QUESTION], SamplingParams(max_tokens=2))
    finally:
        backend.close()


def test_a_base_url_without_a_scheme_is_rejected():
    with pytest.raises(InvalidConfigError, match="http://"):
        OpenAIBackend("localhost:8000/v1", "any")


def test_next_token_logprobs_are_read_from_the_openai_top_logprobs_format():
    from pipelines.llm.openai_backend import next_token_logprobs_from_response

    # The response shape AlpacaEval 2's weighted annotator parses (alpaca_eval/completion_parsers.py).
    response = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "M"},
                "logprobs": {
                    "content": [
                        {
                            "token": "M",
                            "logprob": -0.017597131,
                            "top_logprobs": [
                                {"token": "M", "logprob": -0.017597131},
                                {"token": "m", "logprob": -4.048847},
                                {"token": "Both", "logprob": -14.908222},
                            ],
                        }
                    ]
                },
            }
        ]
    }
    assert next_token_logprobs_from_response(response, source="test") == {
        "M": -0.017597131,
        "m": -4.048847,
        "Both": -14.908222,
    }
    with pytest.raises(InvalidConfigError, match="without log-probabilities"):
        next_token_logprobs_from_response({"choices": [{"message": {"content": "A"}}]}, source="http://x/v1")


@pytest.mark.slow
def test_a_server_without_logprobs_is_a_config_error_that_names_the_text_judge(backend):
    # transformers serve refuses `logprobs` / `top_logprobs` (it lists them as unsupported).
    with pytest.raises(InvalidConfigError, match="parsed-text judge"):
        backend.chat_next_token_logprobs([QUESTION], top_k=5, always_include=("A", "B"))

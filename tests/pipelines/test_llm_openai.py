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

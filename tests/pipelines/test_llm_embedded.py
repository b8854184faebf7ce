"""The bundled models (converted SmolLM2, MiniLM embedder, tiny random model) and the backend factory and cache."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
import torch

from pipelines.errors import InvalidConfigError
from pipelines.llm.embedded import (
    EMBEDDED_MODEL_NAME,
    build_tiny_random_model,
    embedded_gguf_path,
    embedding_model_dir,
    ensure_embedded_model,
    load_embedder,
)
from pipelines.llm.factory import BackendCache, build_backend, cache_key
from pipelines.llm.types import SamplingParams


def test_the_gguf_is_found_inside_the_installed_wheel():
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


def test_the_converted_model_is_plain_safetensors_with_tokenizer_and_chat_template(embedded_model_dir):
    assert embedded_model_dir.name == EMBEDDED_MODEL_NAME
    config = json.loads((embedded_model_dir / "config.json").read_text())
    assert "quantization_config" not in config, "a saved GGUF quantization config would make loading look for a GGUF"
    assert config["num_hidden_layers"] == 30 and config["vocab_size"] == 49152
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (embedded_model_dir / name).is_file(), name
    assert "<|im_start|>" in (embedded_model_dir / "chat_template.jinja").read_text()
    assert json.loads((embedded_model_dir / "generation_config.json").read_text())["eos_token_id"] == 2


def test_an_existing_conversion_is_returned_without_work(embedded_model_dir, model_cache_dir):
    started = time.monotonic()
    assert ensure_embedded_model(model_cache_dir) == embedded_model_dir
    assert time.monotonic() - started < 0.5


def test_a_second_process_waits_for_the_lock_and_uses_the_finished_conversion(embedded_model_dir, tmp_path):
    from filelock import FileLock

    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    result: list = []
    converter_lock = FileLock(str(cache_dir / f".{EMBEDDED_MODEL_NAME}.lock"))
    with converter_lock:  # as if another process were converting right now
        waiter = threading.Thread(target=lambda: result.append(ensure_embedded_model(cache_dir)))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and not result, "the second caller must wait for the lock"
        # The "other process" renames its finished directory into place, then releases the lock.
        finished = cache_dir / EMBEDDED_MODEL_NAME
        finished.mkdir()
        for source in embedded_model_dir.iterdir():
            (finished / source.name).symlink_to(source)
    waiter.join(timeout=30)
    assert result == [finished]
    assert not [path for path in cache_dir.iterdir() if path.name.startswith(f".{EMBEDDED_MODEL_NAME}-")], (
        "no temp dirs"
    )


def test_tiny_random_model_is_small_seeded_and_shares_the_tokenizer(embedded_model_dir, tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["vocab_size"]) == (2, 64, 49152)
    assert (tiny_model_dir / "tokenizer.json").read_bytes() == (embedded_model_dir / "tokenizer.json").read_bytes()
    assert (tiny_model_dir / "chat_template.jinja").is_file()
    rebuilt = build_tiny_random_model(tmp_path / "tiny", embedded_model_dir)
    original, again = load_file(tiny_model_dir / "model.safetensors"), load_file(rebuilt / "model.safetensors")
    assert original.keys() == again.keys()
    assert all((original[name] == again[name]).all() for name in original)


def test_embedder_loads_from_the_wheel_and_ranks_paraphrases_closer():
    assert (embedding_model_dir() / "modules.json").is_file()
    embedder = load_embedder()
    vectors = embedder.encode(
        ["How do I bake bread?", "What is a recipe for bread?", "The stock market fell today."],
        normalize_embeddings=True,
    )
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_backend_cache_reuses_the_loaded_model_and_closes_the_evicted_one(tiny_model_dir, model_cache_dir):
    cache = BackendCache(max_entries=1)
    spec = {"kind": "transformers", "source": "local", "path": str(tiny_model_dir), "dtype": "float32"}
    first, first_cached = cache.get(spec, model_cache_dir=model_cache_dir)
    second, second_cached = cache.get(dict(spec), model_cache_dir=model_cache_dir)
    assert (first_cached, second_cached) == (False, True) and first is second
    other, other_cached = cache.get({**spec, "dtype": "bfloat16"}, model_cache_dir=model_cache_dir)
    assert other is not first and not other_cached and len(cache) == 1
    assert first.model is None, "the evicted backend was closed"
    assert len(other.complete(["Hi"], SamplingParams(max_tokens=2, temperature=0))[0]) == 1
    cache.clear()


def test_backend_cache_keeps_models_within_its_memory_budget_and_evicts_the_least_recently_used(
    tiny_model_dir, model_cache_dir
):
    spec = {"kind": "transformers", "source": "local", "path": str(tiny_model_dir), "dtype": "float32"}
    probe = BackendCache(max_bytes=0)
    sizes = {
        dtype: probe.get({**spec, "dtype": dtype}, model_cache_dir=model_cache_dir)[0].memory_bytes
        for dtype in ("float32", "bfloat16", "float16")
    }
    probe.clear()
    # float32 also holds the packed copy of the output head tied to the embeddings; so does
    # bfloat16 where the CPU has bfloat16 kernels; float16 is never packed.
    packs_bfloat16 = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert sizes["float32"] == 2 * sizes["bfloat16"] if packs_bfloat16 else sizes["float32"] > 2 * sizes["bfloat16"]
    assert sizes["bfloat16"] >= sizes["float16"]
    # Room for the three (plus the weight files' headers in the size guessed before loading), not for more.
    cache = BackendCache(max_entries=10, max_bytes=sum(sizes.values()) + int(0.05 * sizes["float32"]))
    try:
        full, _ = cache.get(spec, model_cache_dir=model_cache_dir)
        half, _ = cache.get({**spec, "dtype": "bfloat16"}, model_cache_dir=model_cache_dir)
        assert cache.used_bytes == sizes["float32"] + sizes["bfloat16"]
        assert cache.get(dict(spec), model_cache_dir=model_cache_dir) == (full, True)  # float32 is now most recent
        other_half, _ = cache.get({**spec, "dtype": "float16"}, model_cache_dir=model_cache_dir)
        # The float16 copy still fits.
        assert len(cache) == 3 and cache.used_bytes == sum(sizes.values())
        again, was_cached = cache.get({**spec, "dtype": "auto"}, model_cache_dir=model_cache_dir)
        # "auto" is float32 on CPU but a key of its own: loading it must first close the least
        # recently used (bfloat16), then float32 (used before float16), to fit one more float32.
        assert not was_cached and half.model is None and full.model is None and other_half.model is not None
        assert cache.used_bytes <= cache.max_bytes and [key[2] for key in cache.cached_keys()] == ["float16", "auto"]
    finally:
        cache.clear()
    assert cache.used_bytes == 0 and again.model is None


def test_backend_cache_always_keeps_the_model_a_job_asked_for_even_over_budget(tiny_model_dir, model_cache_dir):
    cache = BackendCache(max_bytes=1)
    spec = {"kind": "transformers", "source": "local", "path": str(tiny_model_dir), "dtype": "float32"}
    try:
        first, _ = cache.get(spec, model_cache_dir=model_cache_dir)
        assert cache.get(spec, model_cache_dir=model_cache_dir) == (first, True)
        second, _ = cache.get({**spec, "dtype": "bfloat16"}, model_cache_dir=model_cache_dir)
        assert first.model is None and second.model is not None and len(cache) == 1
    finally:
        cache.clear()


def test_backend_cache_budget_comes_from_the_environment(monkeypatch):
    from pipelines.llm.factory import default_cache_bytes

    monkeypatch.setenv("REFINERY_BACKEND_CACHE_BYTES", "3e9")
    assert BackendCache().max_bytes == 3_000_000_000 == default_cache_bytes()
    monkeypatch.delenv("REFINERY_BACKEND_CACHE_BYTES")
    assert 0 < default_cache_bytes() < os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_cache_keys_tell_backends_apart_without_loading_anything(tmp_path):
    local = {"kind": "transformers", "source": "local", "path": "/models/a", "dtype": "float32"}
    endpoint = {"kind": "openai", "source": "endpoint", "base_url": "http://h:1/v1", "served_model_name": "m"}
    assert cache_key(local, model_cache_dir=tmp_path) != cache_key({**local, "kind": "vllm"}, model_cache_dir=tmp_path)
    assert cache_key(endpoint, model_cache_dir=tmp_path) != cache_key(
        {**endpoint, "served_model_name": "other"}, model_cache_dir=tmp_path
    )


def test_factory_errors_name_the_missing_setting_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("REFINERY_TEST_MISSING_KEY", raising=False)
    with pytest.raises(InvalidConfigError, match="base_url"):
        build_backend({"kind": "openai", "source": "endpoint", "served_model_name": "m"}, model_cache_dir=tmp_path)
    with pytest.raises(InvalidConfigError, match="REFINERY_TEST_MISSING_KEY"):
        build_backend(
            {
                "kind": "openai",
                "base_url": "http://h/v1",
                "served_model_name": "m",
                "api_key_env": "REFINERY_TEST_MISSING_KEY",
            },
            model_cache_dir=tmp_path,
        )
    with pytest.raises(InvalidConfigError, match="config.json"):
        build_backend({"kind": "transformers", "source": "local", "path": str(tmp_path)}, model_cache_dir=tmp_path)
    with pytest.raises(InvalidConfigError, match="openai backend"):
        build_backend({"kind": "transformers", "source": "endpoint"}, model_cache_dir=tmp_path)
    with pytest.raises(InvalidConfigError, match="not one of"):
        build_backend({"kind": "llamafile", "source": "local"}, model_cache_dir=tmp_path)


def test_a_vllm_model_on_a_host_without_vllm_is_a_config_error_saying_what_to_install(tiny_model_dir, tmp_path):
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed here")
    spec = {"kind": "vllm", "source": "local", "path": str(tiny_model_dir)}
    with pytest.raises(InvalidConfigError, match="vllm"):
        build_backend(spec, model_cache_dir=tmp_path)


def test_factory_builds_an_openai_backend_with_the_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINERY_ENDPOINT_KEY_TEST", "sk-test")
    backend = build_backend(
        {
            "kind": "openai",
            "source": "endpoint",
            "base_url": "http://127.0.0.1:9/v1/",
            "served_model_name": "m",
            "api_key_env": "REFINERY_ENDPOINT_KEY_TEST",
        },
        model_cache_dir=tmp_path,
    )
    try:
        assert backend.name == "m" and backend.base_url == "http://127.0.0.1:9/v1"
        assert backend._client.headers["Authorization"] == "Bearer sk-test"
    finally:
        backend.close()


@pytest.mark.slow
def test_factory_loads_the_embedded_model_by_source(model_cache_dir, embedded_model_dir):
    cache = BackendCache()
    backend, was_cached = cache.get(
        {"kind": "transformers", "source": "embedded", "dtype": ""}, model_cache_dir=model_cache_dir
    )
    try:
        assert not was_cached and backend.name == EMBEDDED_MODEL_NAME
        assert backend.model_dir == embedded_model_dir
    finally:
        cache.clear()

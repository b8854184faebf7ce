"""Turn a model registry entry's backend spec into a loaded backend, and keep the last one warm per process."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidConfigError
from pipelines.llm.types import LLMBackend

KINDS = ("transformers", "vllm", "openai")
SOURCES = ("embedded", "local", "endpoint", "run")


def build_backend(spec: dict[str, Any], *, model_cache_dir: Path) -> LLMBackend:
    """Load the backend a spec describes.

    spec keys: `kind` (transformers | vllm | openai), `source` (embedded | local | endpoint | run),
    `path` (model directory for local and run), `base_url`, `served_model_name` and `api_key_env`
    (the environment variable holding the key) for openai, and `dtype` (empty means "auto").
    """
    kind = spec.get("kind") or "transformers"
    dtype = spec.get("dtype") or "auto"
    if kind == "openai":
        from pipelines.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(_base_url(spec), _served_model_name(spec), api_key=_api_key(spec))
    if kind == "transformers":
        from pipelines.llm.transformers_backend import TransformersBackend

        return TransformersBackend(model_directory(spec, model_cache_dir), device="auto", dtype=dtype)
    if kind == "vllm":
        from pipelines.llm.vllm_backend import VLLMBackend

        return VLLMBackend(model_directory(spec, model_cache_dir), dtype=dtype)
    raise InvalidConfigError(f"backend kind {kind!r} is not one of {', '.join(KINDS)}")


class BackendCache:
    """The last `max_entries` backends this process loaded, so a worker reuses a model between jobs.

    Evicted backends are closed to give their memory back before the next one loads.
    """

    def __init__(self, max_entries: int = 1) -> None:
        self.max_entries = max(1, max_entries)
        self._backends: OrderedDict[tuple[str, ...], LLMBackend] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: dict[str, Any], *, model_cache_dir: Path) -> tuple[LLMBackend, bool]:
        """Return `(backend, was_cached)`."""
        key = cache_key(spec, model_cache_dir=model_cache_dir)
        with self._lock:
            if key in self._backends:
                self._backends.move_to_end(key)
                return self._backends[key], True
            while len(self._backends) >= self.max_entries:
                _, evicted = self._backends.popitem(last=False)
                evicted.close()
            backend = build_backend(spec, model_cache_dir=model_cache_dir)
            self._backends[key] = backend
            return backend, False

    def clear(self) -> None:
        with self._lock:
            while self._backends:
                _, backend = self._backends.popitem(last=False)
                backend.close()

    def __len__(self) -> int:
        return len(self._backends)


backend_cache = BackendCache(max_entries=int(os.environ.get("REFINERY_BACKEND_CACHE_SIZE", "1")))


def get_backend(spec: dict[str, Any], *, model_cache_dir: Path) -> tuple[LLMBackend, bool]:
    """The process-wide cached backend for `spec`, loading it on a miss; returns `(backend, was_cached)`."""
    return backend_cache.get(spec, model_cache_dir=model_cache_dir)


def cache_key(spec: dict[str, Any], *, model_cache_dir: Path) -> tuple[str, ...]:
    kind = spec.get("kind") or "transformers"
    dtype = spec.get("dtype") or "auto"
    if kind == "openai":
        return (kind, _base_url(spec), _served_model_name(spec), spec.get("api_key_env") or "")
    if spec.get("source") == "embedded":
        # Keyed by where the conversion will live, without converting just to build a key.
        return (kind, str(Path(model_cache_dir).resolve() / "embedded"), dtype)
    return (kind, str(Path(spec.get("path") or "").resolve()), dtype)


def model_directory(spec: dict[str, Any], model_cache_dir: Path) -> Path:
    """The local weights directory a spec names (the bundled model is converted on first use)."""
    source = spec.get("source") or "local"
    if source == "embedded":
        from pipelines.llm.embedded import ensure_embedded_model

        return ensure_embedded_model(Path(model_cache_dir))
    if source == "endpoint":
        raise InvalidConfigError(
            f"backend {spec.get('kind')!r} loads weights in this process; an endpoint model needs the openai backend"
        )
    if source not in SOURCES:
        raise InvalidConfigError(f"model source {source!r} is not one of {', '.join(SOURCES)}")
    path = Path(spec.get("path") or "")
    if not spec.get("path") or not (path / "config.json").is_file():
        raise InvalidConfigError(
            f"model path {str(path)!r} is not a model directory (no config.json there); "
            "give the directory that save_pretrained wrote"
        )
    return path


def _base_url(spec: dict[str, Any]) -> str:
    base_url = (spec.get("base_url") or "").strip()
    if not base_url:
        raise InvalidConfigError("an openai backend needs base_url, e.g. http://127.0.0.1:8000/v1")
    return base_url


def _served_model_name(spec: dict[str, Any]) -> str:
    name = spec.get("served_model_name") or ""
    if not name:
        raise InvalidConfigError("an openai backend needs served_model_name: the model name the server answers to")
    return name


def _api_key(spec: dict[str, Any]) -> str | None:
    variable = spec.get("api_key_env") or ""
    if not variable:
        return None
    key = os.environ.get(variable)
    if not key:
        raise InvalidConfigError(
            f"environment variable {variable} (api_key_env) is not set in the worker; export it and restart the worker"
        )
    return key

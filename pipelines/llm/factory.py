"""Turn a model registry entry's backend spec into a loaded backend, and keep loaded ones warm per process.

Worker settings read from the environment (see docs/operators.md):
- `REFINERY_BACKEND_CACHE_BYTES`: memory the warm backends of one worker may hold together
  (default: 40% of the machine's RAM); least recently used ones are closed to stay under it;
- `REFINERY_BACKEND_CACHE_SIZE`: at most this many warm backends whatever their size (default 4);
- `REFINERY_TORCH_THREADS`: torch threads for transformers generation (default: torch's, one per
  core; set 1 on hosts where other processes share the cores: see the benchmark in the docs);
- `REFINERY_GENERATION_BATCH_SIZE`: sequences decoded together by the transformers backend (32 on
  CPU, 16 on a GPU);
- `REFINERY_KV_CACHE_BYTES`: KV cache one transformers batch may hold (768 MiB on CPU, where it
  shares RAM with everything else; no limit on a GPU; 0: no limit); batches of long prompts get fewer rows;
- `REFINERY_OPENAI_MAX_CONCURRENCY`: requests one job keeps in flight to an OpenAI-compatible
  server (8); raise it for a large `vllm serve`, which batches whatever is in flight.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidConfigError
from pipelines.llm.types import LLMBackend

KINDS = ("transformers", "vllm", "openai")
SOURCES = ("embedded", "local", "endpoint", "run")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def build_backend(spec: dict[str, Any], *, model_cache_dir: Path) -> LLMBackend:
    """Load the backend a spec describes.

    spec keys: `kind` (transformers | vllm | openai), `source` (embedded | local | endpoint | run),
    `path` (model directory for local and run), `base_url`, `served_model_name` and `api_key_env`
    (the environment variable holding the key) for openai, and `dtype` (empty means "auto").
    """
    kind = spec.get("kind") or "transformers"
    dtype = spec.get("dtype") or "auto"
    if kind == "openai":
        from pipelines.llm.endpoint_policy import check_endpoint
        from pipelines.llm.openai_backend import OpenAIBackend

        check_endpoint(_base_url(spec), spec.get("api_key_env") or "")  # the operator's policy, checked in the worker
        return OpenAIBackend(
            _base_url(spec),
            _served_model_name(spec),
            api_key=_api_key(spec),
            max_concurrency=_env_int("REFINERY_OPENAI_MAX_CONCURRENCY", 8),
        )
    if kind == "transformers":
        from pipelines.llm.transformers_backend import TransformersBackend

        return TransformersBackend(
            model_directory(spec, model_cache_dir),
            device="auto",
            dtype=dtype,
            # 32 sequences per call decoded 13% faster than 16 on the 2-core CPU (bench/generation.py);
            # on a GPU, 16 keeps the KV cache of long prompts on large models within memory.
            batch_size=_env_int("REFINERY_GENERATION_BATCH_SIZE", 16 if _has_cuda() else 32),
            torch_threads=_env_int("REFINERY_TORCH_THREADS", 0) or None,
            # 768 MiB keeps a CPU worker holding SmolLM2-135M under 2 GB resident even for 32 rows of
            # 660-token prompts (AFT aggregation), which would otherwise cache ~970 MB at once.
            kv_cache_bytes=_env_int("REFINERY_KV_CACHE_BYTES", 0 if _has_cuda() else 768 * 2**20) or None,
        )
    if kind == "vllm":
        from pipelines.llm.vllm_backend import VLLMBackend

        return VLLMBackend(model_directory(spec, model_cache_dir), dtype=dtype)
    raise InvalidConfigError(f"backend kind {kind!r} is not one of {', '.join(KINDS)}")


class BackendCache:
    """Backends this process loaded, kept so a worker reuses a model between jobs; LRU within a memory budget.

    Keyed by `cache_key` (kind, model and dtype). Each backend reports the memory it holds
    (`memory_bytes`: weights for transformers, the reserved GPU share for vLLM, nothing for a remote
    endpoint). Before a load, least recently used backends are closed until the new model's
    estimated size fits in `max_bytes`; after it, the estimate is replaced by the real size. The
    newest backend always stays, even alone over budget: a job needs its model. Two vLLM engines
    never share a process (each reserves a fixed share of the GPU), so loading one closes the other.
    """

    def __init__(self, max_entries: int = 4, max_bytes: int | None = None) -> None:
        self.max_entries = max(1, max_entries)
        self.max_bytes = default_cache_bytes() if max_bytes is None else max(0, max_bytes)
        self._backends: OrderedDict[tuple[str, ...], LLMBackend] = OrderedDict()
        self._sizes: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def get(self, spec: dict[str, Any], *, model_cache_dir: Path) -> tuple[LLMBackend, bool]:
        """Return `(backend, was_cached)`."""
        key = cache_key(spec, model_cache_dir=model_cache_dir)
        with self._lock:
            if key in self._backends:
                self._backends.move_to_end(key)
                return self._backends[key], True
            if key[0] == "vllm":
                for other in [k for k in self._backends if k[0] == "vllm"]:
                    self._evict(other)
            self._make_room(estimated_backend_bytes(spec, model_cache_dir=model_cache_dir), entries=1)
            backend = build_backend(spec, model_cache_dir=model_cache_dir)
            self._backends[key] = backend
            self._sizes[key] = backend_memory_bytes(backend)
            self._make_room(0, entries=0, keep=key)
            return backend, False

    @property
    def used_bytes(self) -> int:
        return sum(self._sizes.values())

    def cached_keys(self) -> list[tuple[str, ...]]:
        """Cached keys, least recently used first."""
        return list(self._backends)

    def clear(self) -> None:
        with self._lock:
            while self._backends:
                self._evict(next(iter(self._backends)))

    def __len__(self) -> int:
        return len(self._backends)

    def _make_room(self, incoming_bytes: int, *, entries: int, keep: tuple[str, ...] | None = None) -> None:
        """Close least recently used backends until `incoming_bytes` and `entries` more fit."""
        for key in list(self._backends):
            over_bytes = self.used_bytes + incoming_bytes > self.max_bytes
            over_count = len(self._backends) + entries > self.max_entries
            if not (over_bytes or over_count):
                return
            if key != keep:
                self._evict(key)

    def _evict(self, key: tuple[str, ...]) -> None:
        backend = self._backends.pop(key)
        self._sizes.pop(key, None)
        backend.close()


def default_cache_bytes() -> int:
    """`REFINERY_BACKEND_CACHE_BYTES`, else 40% of physical memory (the rest is for the jobs themselves)."""
    configured = os.environ.get("REFINERY_BACKEND_CACHE_BYTES", "").strip()
    if configured:
        return int(float(configured))
    try:
        return int(0.4 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def backend_memory_bytes(backend: LLMBackend) -> int:
    """Memory a loaded backend holds, as it reports it (0 for one that reports nothing, e.g. an endpoint)."""
    return int(getattr(backend, "memory_bytes", 0) or 0)


def estimated_backend_bytes(spec: dict[str, Any], *, model_cache_dir: Path) -> int:
    """Bytes a spec's model will take once loaded, guessed before loading from its weight files.

    The files' size is scaled from the dtype they are stored in (config.json) to the one the model
    loads as ("auto": float32 on CPU, as stored on a GPU); an unconverted embedded model or an
    endpoint counts as 0. The real size replaces the guess once the model is loaded.
    """
    kind = spec.get("kind") or "transformers"
    if kind == "openai":
        return 0
    if spec.get("source") == "embedded":
        from pipelines.llm.embedded import EMBEDDED_MODEL_NAME

        directory = Path(model_cache_dir) / EMBEDDED_MODEL_NAME
    else:
        directory = Path(spec.get("path") or "")
    if not directory.is_dir():
        return 0
    on_disk = sum(path.stat().st_size for pattern in ("*.safetensors", "*.bin") for path in directory.glob(pattern))
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    stored = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    dtype = spec.get("dtype") or "auto"
    if dtype == "auto":
        dtype = stored if kind == "vllm" or _has_cuda() else "float32"
    return on_disk * DTYPE_BYTES.get(dtype, 4) // DTYPE_BYTES.get(stored, 4)


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


backend_cache = BackendCache(
    max_entries=int(os.environ.get("REFINERY_BACKEND_CACHE_SIZE", "4")),
    max_bytes=default_cache_bytes(),
)


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


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise InvalidConfigError(f"environment variable {name}={value!r} must be a whole number") from error


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

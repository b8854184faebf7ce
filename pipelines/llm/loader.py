"""How a pipeline gets its models: one loader object, handed in by whoever runs the pipeline.

A pipeline asks for a model when a stage needs it, by the spec a registry entry gives (see
`pipelines.llm.factory.build_backend`), so a method that needs no model for a stage (a resumed run
whose generations are on disk) loads none. The worker's loader (`workers/backends.py`) also puts
the load time and the cache hit on the run page; `LocalBackends` is the plain one for scripts,
notebooks and tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pipelines.llm.factory import build_backend, get_backend, model_directory
from pipelines.llm.types import LLMBackend

BackendSpec = dict[str, Any]


class BackendLoader(Protocol):
    """What a pipeline may ask of the models it runs on."""

    def load(self, spec: BackendSpec, *, fresh: bool = False) -> LLMBackend:
        """A loaded backend for `spec`.

        `fresh=False` may reuse a warm backend this process holds (never close it: the loader owns
        it); `fresh=True` loads a new one that the caller closes when done (a model just trained,
        which no later job will ask for).
        """
        ...

    def release_all(self) -> None:
        """Free every warm backend (before training needs the memory)."""
        ...

    def model_directory(self, spec: BackendSpec) -> Path:
        """The local weights directory of `spec`, for stages that train rather than generate."""
        ...


class LocalBackends:
    """A loader for plain Python calls: warm backends come from this process's cache.

    `given` maps a spec's `path` (or "embedded") to a backend the caller already holds, so a test
    or notebook can run a pipeline on a model it loaded itself; those are never closed here.
    """

    def __init__(self, model_cache_dir: str | Path, given: dict[str, LLMBackend] | None = None) -> None:
        self.model_cache_dir = Path(model_cache_dir)
        self.given = dict(given or {})
        self.loaded: list[str] = []
        """The specs' names this loader was asked for, in order (tests read it)."""

    def load(self, spec: BackendSpec, *, fresh: bool = False) -> LLMBackend:
        name = spec_name(spec)
        self.loaded.append(name)
        if name in self.given:
            return self.given[name]
        if fresh:
            return build_backend(spec, model_cache_dir=self.model_cache_dir)
        backend, _ = get_backend(spec, model_cache_dir=self.model_cache_dir)
        return backend

    def release_all(self) -> None:
        from pipelines.llm.factory import backend_cache

        backend_cache.clear()

    def model_directory(self, spec: BackendSpec) -> Path:
        return model_directory(spec, self.model_cache_dir)


def spec_name(spec: BackendSpec) -> str:
    """A short name for a spec in logs: its path, served model name, or "embedded"."""
    if spec.get("source") == "embedded":
        return "embedded"
    return str(spec.get("path") or spec.get("served_model_name") or spec.get("base_url") or "?")


def load_when_needed(backends: BackendLoader, spec: BackendSpec) -> Callable[[], LLMBackend]:
    """A function that loads `spec` on its first call and hands out that backend after.

    Why: a batch stage calls it inside its batch function, so a resumed run whose batches are all
    on disk already loads no model at all.
    """
    loaded: list[LLMBackend] = []

    def backend() -> LLMBackend:
        if not loaded:
            loaded.append(backends.load(spec))
        return loaded[0]

    return backend

"""ALMoST pipeline fixtures: real tiny-model backends that remember what they were asked."""
from __future__ import annotations

from pathlib import Path

import pytest


class RecordingBackend:
    """A real TransformersBackend that also records every raw prompt it completes (what the model saw)."""

    def __init__(self, model_dir: Path) -> None:
        from pipelines.llm.transformers_backend import TransformersBackend

        self.inner = TransformersBackend(model_dir, device="cpu")
        self.name = self.inner.name
        self.prompts: list[str] = []
        self.calls = 0

    def complete(self, prompts, params):  # type: ignore[no-untyped-def]
        self.prompts.extend(prompts)
        self.calls += 1
        return self.inner.complete(prompts, params)

    def chat(self, conversations, params):  # type: ignore[no-untyped-def]
        raise AssertionError("ALMoST prompts are raw text; chat must not be used")

    def close(self) -> None:
        self.inner.close()


class BackendPool:
    """A `BackendLoader` as the worker's: one backend per model spec, loaded on first use, released on demand."""

    def __init__(self) -> None:
        self.loaded: dict[str, RecordingBackend] = {}
        self.loads: list[str] = []
        self.releases = 0

    def load(self, spec, *, fresh=False):  # type: ignore[no-untyped-def]
        path = spec["path"]
        if path not in self.loaded:
            self.loads.append(path)
            self.loaded[path] = RecordingBackend(Path(path))
        return self.loaded[path]

    def release_all(self) -> None:
        self.releases += 1
        for backend in self.loaded.values():
            backend.close()
        self.loaded.clear()

    def model_directory(self, spec) -> Path:  # type: ignore[no-untyped-def]
        return Path(spec["path"])

    @property
    def calls(self) -> int:
        return sum(backend.calls for backend in self.loaded.values())


@pytest.fixture
def backend_pool():
    pool = BackendPool()
    yield pool
    pool.release_all()


@pytest.fixture
def tiny_spec(tiny_model_dir) -> dict:
    """The tiny model as a registry entry's backend spec."""
    return {"kind": "transformers", "source": "local", "path": str(tiny_model_dir)}


@pytest.fixture(scope="session")
def embedder():
    from pipelines.llm.embedded import load_embedder

    return load_embedder()

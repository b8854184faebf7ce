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
    """The provider a worker passes in: one backend per model label, loaded on first use."""

    def __init__(self, model_dirs: dict[str, Path]) -> None:
        self.model_dirs = model_dirs
        self.loaded: dict[str, RecordingBackend] = {}
        self.loads: list[str] = []

    def __call__(self, label: str) -> RecordingBackend:
        if label not in self.loaded:
            self.loads.append(label)
            self.loaded[label] = RecordingBackend(self.model_dirs[label])
        return self.loaded[label]

    def release(self) -> None:
        for backend in self.loaded.values():
            backend.close()
        self.loaded.clear()

    @property
    def calls(self) -> int:
        return sum(backend.calls for backend in self.loaded.values())


@pytest.fixture
def backend_pool(tiny_model_dir):
    pool = BackendPool({"tiny": tiny_model_dir})
    yield pool
    pool.release()


@pytest.fixture(scope="session")
def embedder():
    from pipelines.llm.embedded import load_embedder

    return load_embedder()

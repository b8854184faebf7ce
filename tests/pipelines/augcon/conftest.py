"""Shared pieces of the AugCon tests: the demo QA set, short real documents, a run store, a counting backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipelines.common.store import RunStore
from pipelines.llm.types import Completion, Conversation, SamplingParams

REPO_ROOT = Path(__file__).resolve().parents[3]
FEW_SHOT = [
    json.loads(line)
    for line in (REPO_ROOT / "webapp/library/demo/fewshot_qa.jsonl").read_text().splitlines()
    if line.strip()
]
DOCUMENTS = [
    {
        "document_id": "while",
        "title": "The while statement",
        "text": "The while statement is used for repeated execution as long as an expression is true. "
        "It repeatedly tests the expression and, if it is true, executes the first suite. If the expression is "
        "false, the suite of the else clause, if present, is executed and the loop terminates.",
    },
    {
        "document_id": "pass",
        "title": "The pass statement",
        "text": "The pass statement is a null operation: when it is executed, nothing happens. It is useful as a "
        "placeholder when a statement is required syntactically but no code needs to be executed.",
    },
]


class CountingBackend:
    """A real backend that records every prompt it is asked, to check what a resumed run re-asks."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self.completion_prompts: list[str] = []
        self.completion_calls: list[int] = []
        """Prompts per `complete` call, in order."""
        self.chat_conversations: list[Conversation] = []
        self.chat_params: list[SamplingParams] = []
        """The sampling settings of every `chat` call, in order."""

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        self.completion_prompts.extend(prompts)
        self.completion_calls.append(len(prompts))
        return self.inner.complete(prompts, params)

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        self.chat_conversations.extend(conversations)
        self.chat_params.append(params)
        return self.inner.chat(conversations, params)

    def close(self) -> None:
        pass


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    return TransformersBackend(tiny_model_dir, device="cpu", torch_threads=1)


def seeded_store(root: Path, documents: list[dict] | None = None, few_shot: list[dict] | None = None) -> RunStore:
    store = RunStore(root)
    store.write_jsonl(documents if documents is not None else DOCUMENTS, "documents.jsonl")
    store.write_jsonl(few_shot if few_shot is not None else FEW_SHOT[:3], "fewshot.jsonl")
    return store


def run_on(config, backend, store: RunStore, progress, *, scorer_model_dir: Path | None = None):  # type: ignore[no-untyped-def]
    """`run_augcon` on a backend the test holds (the generator's spec names it), the scorer from a local directory."""
    from pipelines.augcon import AugConInputs, run_augcon
    from pipelines.llm.loader import LocalBackends

    inputs = AugConInputs(
        generator={"path": "generator"},
        scorer={"path": str(scorer_model_dir)} if scorer_model_dir is not None else None,
    )
    backends = LocalBackends(store.path(".model-cache"), given={"generator": backend})
    return run_augcon(config, inputs, backends, store, progress)


def artifact(result, name: str):  # type: ignore[no-untyped-def]
    """The result's artifact called `name` (queries, scorer_pairs, sft)."""
    return next(output for output in result.artifacts if output.name == name)

"""The two steps a propose-and-aggregate network is built from: `propose` and `aggregate`.

Each takes a batch of queries and returns, per query, one layer record: the system message the
layer saw, its `n` responses, and their token counts. The `n` responses of a query are `n`
samples of one encoded prompt (SamplingParams.n), not `n` separate requests: same distribution as
the original's duplicated conversations, one prompt encoding instead of `n`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.aft.prompts import aggregator_conversation, proposer_conversation
from pipelines.llm.types import Conversation, LLMBackend, SamplingParams

LayerRecord = dict[str, Any]
"""{"name", "role", "system", "responses", "prompt_tokens", "completion_tokens", "finish_reasons"}."""


def propose(
    backend: LLMBackend, queries: Sequence[str], sampling: SamplingParams, *, name: str = "proposals", role: str = "proposal"
) -> list[LayerRecord]:
    """`sampling.n` drafts per query, each from [system: "\\n", user: query]."""
    return _sample_layer(backend, [proposer_conversation(query) for query in queries], sampling, name, role)


def aggregate(
    backend: LLMBackend,
    queries: Sequence[str],
    previous_responses: Sequence[Sequence[str]],
    sampling: SamplingParams,
    *,
    name: str,
    role: str = "aggregation",
) -> list[LayerRecord]:
    """`sampling.n` aggregations per query, each seeing all of that query's previous responses, numbered."""
    conversations = [
        aggregator_conversation(query, responses) for query, responses in zip(queries, previous_responses, strict=True)
    ]
    return _sample_layer(backend, conversations, sampling, name, role)


def _sample_layer(
    backend: LLMBackend, conversations: list[Conversation], sampling: SamplingParams, name: str, role: str
) -> list[LayerRecord]:
    outputs = backend.chat(conversations, sampling)
    return [
        {
            "name": name,
            "role": role,
            "system": conversation[0]["content"],
            "responses": [completion.text for completion in completions],
            "prompt_tokens": completions[0].prompt_tokens if completions else 0,
            "completion_tokens": [completion.completion_tokens for completion in completions],
            "finish_reasons": [completion.finish_reason for completion in completions],
        }
        for conversation, completions in zip(conversations, outputs, strict=True)
    ]

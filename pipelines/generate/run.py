"""Answer every prompt of the run's prompt snapshot in batches; each finished batch is a file, so a rerun resumes.

The run directory holds `prompts.jsonl` (the snapshot, `{"prompt_id", "prompt"}` rows, written by
whoever starts the run: `pipelines.common.prompts`), `batches/` (one atomic file per finished
batch) and, at the end, `generations.jsonl` and `generations.parquet`.
"""

from __future__ import annotations

import time
from typing import Any

from pipelines.common.batches import report_batch_speed, run_in_batches
from pipelines.common.progress import Progress
from pipelines.common.prompts import load_prompts
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.common.tables import export_batch_files
from pipelines.generate.config import GenerateConfig, GenerateInputs
from pipelines.llm.loader import BackendLoader, load_when_needed
from pipelines.llm.types import Conversation, LLMBackend, SamplingParams

OUTPUT_STEM = "generations"
STAGE = "generate"


def run_generate(
    config: GenerateConfig, inputs: GenerateInputs, backends: BackendLoader, store: RunStore, progress: Progress
) -> PipelineResult:
    """Generate `config.sampling.n` answers for each prompt, skipping batches already on disk.

    The model is loaded only when some batch is still missing, so a rerun of a finished run
    (a resume after the export) loads none.
    """
    started = time.monotonic()
    prompts = load_prompts(store)
    backend = load_when_needed(backends, inputs.model)

    def answer(index: int, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        batch_started = time.monotonic()
        rows = _answer_batch(config, backend(), batch, _batch_sampling(config.sampling, index))
        report_batch_speed(progress, index, sum(sum(row["completion_tokens"]) for row in rows), batch_started)
        return rows

    batched = run_in_batches(prompts, config.batch_size, answer, store=store, progress=progress, stage=STAGE)

    table = export_batch_files(store, batched.batch_names, OUTPUT_STEM, progress)
    completion_tokens = sum(sum(row["completion_tokens"]) for row in store.read_jsonl(table.jsonl_path.name))
    seconds = time.monotonic() - started
    return PipelineResult(
        artifacts=[table.artifact("generations", "generations")],
        summary={
            "rows": table.row_count,
            "completion_tokens": completion_tokens,
            "tokens_per_second": round(completion_tokens / seconds, 2) if seconds else 0.0,
            "batches_generated_this_attempt": batched.batches_generated,
        },
    )


def _batch_sampling(sampling: SamplingParams, batch_index: int) -> SamplingParams:
    """Derive a per-batch seed so a resumed run draws what the uninterrupted run would have."""
    if sampling.seed is None:
        return sampling
    return SamplingParams.from_dict({**sampling.to_dict(), "seed": sampling.seed + batch_index})


def _answer_batch(
    config: GenerateConfig, backend: LLMBackend, batch: list[dict[str, Any]], sampling: SamplingParams
) -> list[dict[str, Any]]:
    conversations: list[Conversation] = []
    for row in batch:
        conversation: Conversation = []
        if config.system_prompt:
            conversation.append({"role": "system", "content": config.system_prompt})
        if isinstance(row["prompt"], list):  # a conversation so far: answered as its next reply
            conversation.extend({"role": message["role"], "content": message["content"]} for message in row["prompt"])
        else:
            conversation.append({"role": "user", "content": row["prompt"]})
        conversations.append(conversation)
    outputs = backend.chat(conversations, sampling)
    return [
        {
            "prompt_id": row["prompt_id"],
            "prompt": row["prompt"],
            "responses": [completion.text for completion in completions],
            "prompt_tokens": completions[0].prompt_tokens if completions else 0,
            "completion_tokens": [completion.completion_tokens for completion in completions],
            "finish_reasons": [completion.finish_reason for completion in completions],
            "model": backend.name,
        }
        for row, completions in zip(batch, outputs, strict=True)
    ]

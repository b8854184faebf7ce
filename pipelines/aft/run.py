"""Propose-and-aggregate over a prompt file, batch by batch; each finished batch is a file, so a rerun resumes.

Run directory:

    prompts.jsonl                    the prompts (`prompt_id`, `prompt`), written once by the caller
    batches/batch-<i>.jsonl          one row per prompt of batch i, every layer in it
    aggregations.jsonl / .parquet    all rows, at the end

A row keeps every layer so a reader can watch the drafts turn into the answer: `proposals`,
`hidden_layers` (one list per aggregation layer), `final_answer` (also as `responses: [answer]`,
the generate artifact's column, so evaluation compares it with plain sampling), and `layers`: per
layer its name, role, system message, responses, prompt tokens and completion tokens.
"""
from __future__ import annotations

import time
from typing import Any

from pipelines.aft.config import AftConfig, AftInputs
from pipelines.aft.layers import LayerRecord, aggregate, propose
from pipelines.common.batches import report_batch_speed, run_in_batches
from pipelines.common.progress import Progress
from pipelines.common.prompts import load_prompts
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.common.tables import export_batch_files
from pipelines.llm.loader import BackendLoader, load_when_needed
from pipelines.llm.types import LLMBackend, SamplingParams

OUTPUT_STEM = "aggregations"
STAGE = "propose and aggregate"

__all__ = ["answer_batch", "flat_summary", "run_aft", "summarize_rows"]


def run_aft(
    config: AftConfig, inputs: AftInputs, backends: BackendLoader, store: RunStore, progress: Progress
) -> PipelineResult:
    """Answer every prompt of `prompts.jsonl` with the config's layers, skipping batches already on disk.

    The model is loaded only when some batch is still missing, so a rerun of a finished run loads none.
    The artifact is "aggregations" (or "single samples" for the baseline mode); the summary is
    `flat_summary` of the rows.
    """
    prompts = load_prompts(store)
    progress.log(
        f"{config.mode}: {' -> '.join(f'{layer.name} (n={layer.sampling.n})' for layer in config.layers())}; "
        f"{config.generations_per_prompt()} generations per prompt"
    )
    backend = load_when_needed(backends, inputs.model)

    def answer(index: int, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        started = time.monotonic()
        rows = answer_batch(config, backend(), batch, index, progress)
        report_batch_speed(progress, index, sum(row["completion_tokens"] for row in rows), started)
        return rows

    batched = run_in_batches(prompts, config.batch_size, answer, store=store, progress=progress, stage=STAGE)

    table = export_batch_files(store, batched.batch_names, OUTPUT_STEM, progress)
    summary = summarize_rows(list(store.read_jsonl(table.jsonl_path.name)))
    return PipelineResult(
        artifacts=[table.artifact("aggregations" if config.mode == "aggregate" else "single samples", "aggregations")],
        summary=flat_summary(summary, batched.batches_generated),
    )


def flat_summary(summary: dict[str, Any], batches_this_attempt: int) -> dict[str, Any]:
    """The run page shows the summary as a flat table: `summarize_rows`'s figures, one line per layer's tokens."""
    values = {key: value for key, value in summary.items() if not isinstance(value, dict)}
    for name, tokens in summary.get("completion_tokens_per_layer", {}).items():
        values[f"completion tokens · {name}"] = tokens
    values["batches_generated_this_attempt"] = batches_this_attempt
    return values


def answer_batch(
    config: AftConfig, backend: LLMBackend, batch: list[dict[str, Any]], batch_index: int, progress: Progress | None = None
) -> list[dict[str, Any]]:
    """Run every layer over one batch of prompts; one row per prompt."""
    started = time.monotonic()
    queries = [row["prompt"] for row in batch]
    layers_by_prompt: list[list[LayerRecord]] = [[] for _ in batch]
    previous: list[list[str]] = []
    for layer_index, plan in enumerate(config.layers()):
        if progress is not None and layer_index:
            progress.check_cancelled()
        sampling = _seeded(plan.sampling, config.seed, batch_index, layer_index)
        if plan.role in ("proposal", "single"):
            records = propose(backend, queries, sampling, name=plan.name, role=plan.role)
        else:
            records = aggregate(backend, queries, previous, sampling, name=plan.name, role=plan.role)
        for prompt_layers, record in zip(layers_by_prompt, records, strict=True):
            prompt_layers.append(record)
        previous = [record["responses"] for record in records]
    seconds_per_prompt = (time.monotonic() - started) / max(len(batch), 1)
    return [
        _row(config, row, layers, backend.name, seconds_per_prompt) for row, layers in zip(batch, layers_by_prompt, strict=True)
    ]


def _seeded(sampling: SamplingParams, seed: int | None, batch_index: int, layer_index: int) -> SamplingParams:
    """A seed per (batch, layer), so a resumed run draws what the uninterrupted one would have."""
    if seed is None:
        return sampling
    return SamplingParams.from_dict({**sampling.to_dict(), "seed": seed + 1000 * batch_index + layer_index})


def _row(
    config: AftConfig, prompt: dict[str, Any], layers: list[LayerRecord], model: str, seconds: float
) -> dict[str, Any]:
    last = layers[-1]
    final_answer = last["responses"][0] if last["responses"] else ""
    completion_per_layer = [sum(layer["completion_tokens"]) for layer in layers]
    return {
        "prompt_id": prompt["prompt_id"],
        "prompt": prompt["prompt"],
        "mode": config.mode,
        "proposals": layers[0]["responses"],
        "hidden_layers": [layer["responses"] for layer in layers if layer["role"] == "aggregation"],
        "final_answer": final_answer,
        "responses": [final_answer],
        "layers": layers,
        "layer_names": [layer["name"] for layer in layers],
        "completion_tokens_per_layer": completion_per_layer,
        "prompt_tokens_per_layer": [layer["prompt_tokens"] for layer in layers],
        "completion_tokens": sum(completion_per_layer),
        "answer_tokens": last["completion_tokens"][0] if last["completion_tokens"] else 0,
        "generations": sum(len(layer["responses"]) for layer in layers),
        "seconds": round(seconds, 3),
        "model": model,
    }


def summarize_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cost per layer and per answer: what "aggregation vs a single sample, per extra token" needs."""
    if not rows:
        return {"prompts": 0}
    names = rows[0]["layer_names"]
    per_layer = [0] * len(names)
    prompt_per_layer = [0] * len(names)
    for row in rows:
        for position, tokens in enumerate(row["completion_tokens_per_layer"]):
            per_layer[position] += tokens
        for position, tokens in enumerate(row["prompt_tokens_per_layer"]):
            prompt_per_layer[position] += tokens  # the n samples share one encoding of the prompt
    total = sum(per_layer)
    return {
        "prompts": len(rows),
        "mode": rows[0]["mode"],
        "generations": sum(row["generations"] for row in rows),
        "completion_tokens": total,
        "completion_tokens_per_answer": round(total / len(rows), 1),
        "answer_tokens_per_answer": round(sum(row["answer_tokens"] for row in rows) / len(rows), 1),
        "completion_tokens_per_layer": dict(zip(names, per_layer, strict=True)),
        "prompt_tokens_per_layer": dict(zip(names, prompt_per_layer, strict=True)),
        "seconds": round(sum(row["seconds"] for row in rows), 2),
    }

"""Step rg (response generation): one response per prompt for every configuration of the rubric.

Configurations are answered model by model (each model is loaded once); every finished batch is
`rg/<configuration>/batch-NNNNNN.jsonl`, and `rg/<configuration>.jsonl` (one row per prompt, in
prompt order, like the original's `<model>-<prompt>-<k>shot.json`) appears when the configuration is done.
"""
from __future__ import annotations

from typing import Any

from pipelines.almost.config import AlmostConfig, ResponseConfiguration
from pipelines.almost.prompts import RESPONSE_STOPS, AlmostInputs, clean_response, response_prompt_text
from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.llm.loader import BackendLoader
from pipelines.llm.types import LLMBackend, SamplingParams


def responses_file(configuration: ResponseConfiguration) -> str:
    return f"rg/{configuration.name}.jsonl"


def check_demonstrations(config: AlmostConfig, inputs: AlmostInputs) -> None:
    """Every configuration's demonstration prompt exists and holds as many dialogues as it shows."""
    for configuration in config.configurations:
        if not configuration.prompt:
            continue
        demonstration = inputs.demonstrations.get(configuration.prompt)
        if demonstration is None:
            raise InvalidInputError(
                f"configuration {configuration.name}: no demonstration prompt labelled {configuration.prompt!r} "
                f"(have: {', '.join(sorted(inputs.demonstrations)) or 'none'})"
            )
        if configuration.shots > len(demonstration.dialogues):
            # The original silently shows fewer (Faithful has 3 dialogues, so its 5-shot is a 3-shot).
            raise InvalidInputError(
                f"configuration {configuration.name}: {configuration.shots} shots, but demonstration prompt "
                f"{configuration.prompt!r} holds {len(demonstration.dialogues)} dialogues"
            )


def generate_responses(
    config: AlmostConfig,
    inputs: AlmostInputs,
    prompts: list[dict[str, Any]],
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
) -> dict[str, list[dict[str, Any]]]:
    """Configuration name -> its rows (`prompt_id`, `prompt`, `response`, `raw`, `finish_reason`, `tokens`).

    A model is loaded (by its label's spec in `inputs.models`) only if one of its configurations is unfinished.
    """
    check_demonstrations(config, inputs)
    results: dict[str, list[dict[str, Any]]] = {}
    for model in config.models:  # model by model: each backend is asked for once
        for rank, configuration in enumerate(config.configurations):
            if configuration.model != model:
                continue
            if store.exists(responses_file(configuration)):
                results[configuration.name] = list(store.read_jsonl(responses_file(configuration)))
                continue
            results[configuration.name] = _answer_configuration(
                config, inputs, configuration, rank, prompts, backends.load(inputs.models[model]), store, progress
            )
    return {configuration.name: results[configuration.name] for configuration in config.configurations}


def _answer_configuration(
    config: AlmostConfig,
    inputs: AlmostInputs,
    configuration: ResponseConfiguration,
    rank: int,
    prompts: list[dict[str, Any]],
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
) -> list[dict[str, Any]]:
    settings = config.response_generation
    demonstration = inputs.demonstrations.get(configuration.prompt) if configuration.prompt else None
    batches = [prompts[start : start + settings.batch_size] for start in range(0, len(prompts), settings.batch_size)]
    name = configuration.name
    finished = [index for index in range(len(batches)) if store.exists(_batch_name(name, index))]
    progress.stage(f"rg · {name}", total=len(prompts), done=sum(len(batches[index]) for index in finished))
    for index, batch in enumerate(batches):
        if index in finished:
            continue
        progress.check_cancelled()
        sampling = SamplingParams(
            n=1,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=configuration.max_tokens,
            seed=settings.seed + 10_000 * rank + index,
            stop=RESPONSE_STOPS,
        )
        texts = [response_prompt_text(demonstration, configuration.shots, row["prompt"]) for row in batch]
        outputs = backend.complete(texts, sampling)
        rows = [
            {
                "prompt_id": row["prompt_id"],
                "prompt": row["prompt"],
                "configuration": name,
                "response": clean_response(completions[0].text),
                "raw": completions[0].text,
                "finish_reason": completions[0].finish_reason,
                "tokens": completions[0].completion_tokens,
            }
            for row, completions in zip(batch, outputs, strict=True)
        ]
        store.write_jsonl(rows, _batch_name(name, index))
        progress.advance(len(batch))
    rows = [row for index in range(len(batches)) for row in store.read_jsonl(_batch_name(name, index))]
    store.write_jsonl(rows, responses_file(configuration))
    return rows


def _batch_name(configuration_name: str, index: int) -> str:
    return f"rg/{configuration_name}/batch-{index:06d}.jsonl"

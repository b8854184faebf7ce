"""SPIN's outer loop: for t = 0 .. iterations-1, generate with p_t, pair, train p_{t+1} against p_t.

Run directory layout (every file appears atomically, so a restart skips what is finished):

    prompts.jsonl                    the SFT data as SPIN sees it: prompt_id, prompt, real answer, turn
    prompts-summary.json             how the rows became prompts (turn mode, multi-turn rows, turns left out)
    iter-<t>/generate/               p_t's answers, batch by batch (pipelines.generate)
    iter-<t>/pairs.jsonl             SPIN rows of iteration t (also prompt/chosen/rejected)
    iter-<t>/train.jsonl             what p_{t+1} trains on: pairs of t (+ t-1 when mixing)
    iter-<t>/train/                  the training layer's store: reference log-probs, checkpoints, final/
    iter-<t>/summary.json            the iteration's result; its presence means the iteration is done
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.common.progress import Progress, StagePrefix
from pipelines.common.prompts import write_prompts
from pipelines.common.result import ArtifactOutput, ModelOutput, PipelineResult
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.generate import GenerateConfig, GenerateInputs, run_generate
from pipelines.llm.loader import BackendLoader, BackendSpec
from pipelines.llm.types import LLMBackend
from pipelines.spin.config import CONVERSATION_TURNS, SpinConfig
from pipelines.spin.inspect import PROMPTS_SUMMARY_FILE, SPIN_PROMPTS_FILE, SUMMARY_FILE, iteration_rows

PAIRS_FILE = "pairs.jsonl"
TRAIN_FILE = "train.jsonl"


@dataclass(frozen=True)
class SpinInputs:
    """What a SPIN run starts from: p_0 (a registry entry's backend spec) and the SFT dataset's JSONL."""

    model: BackendSpec
    """p_0; its weights are trained directly, and its dtype is the one every generator loads at."""
    sft_path: Path
    """The SFT rows whose answers are the real ones (read once, into `prompts.jsonl`)."""


def spin_prompts(
    sft_rows: list[dict[str, Any]], max_prompts: int = 0, conversation_turn: str = "first"
) -> list[dict[str, Any]]:
    """SFT rows -> SPIN's prompts: the conversation before the chosen reply, and that reply as the real answer."""
    return build_spin_prompts(sft_rows, max_prompts, conversation_turn)[0]


def build_spin_prompts(
    sft_rows: list[dict[str, Any]], max_prompts: int = 0, conversation_turn: str = "first"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """SPIN's prompts and a summary of how they were made.

    `first` (SPIN's own: `real = [messages[0], messages[1]]` on UltraChat) takes the first reply;
    `last` the last reply; `every` one prompt per reply. The prompt is always the whole conversation
    before the chosen reply, so a later turn keeps the turns it answers. A prompt is text when every
    prompt is a single user message (the usual SFT row), else a list of {role, content} messages for
    every row, so the file has one shape. The summary counts multi-turn rows and the replies left out.
    """
    from pipelines.training.examples import sft_examples

    if conversation_turn not in CONVERSATION_TURNS:
        raise InvalidInputError(
            f"conversation_turn must be one of {', '.join(CONVERSATION_TURNS)}, got {conversation_turn!r}"
        )
    used_rows = sft_rows[:max_prompts] if max_prompts else sft_rows
    rows: list[dict[str, Any]] = []
    multi_turn_rows = replies_left_out = 0
    for index, example in enumerate(sft_examples(used_rows)):
        conversation = [*example.prompt, {"role": "assistant", "content": example.completion}]
        replies = [position for position, message in enumerate(conversation) if message["role"] == "assistant"]
        multi_turn_rows += len(replies) > 1
        chosen = {"first": replies[:1], "last": replies[-1:], "every": replies}[conversation_turn]
        replies_left_out += len(replies) - len(chosen)
        for position in chosen:
            turn = replies.index(position) + 1
            context, real_answer = conversation[:position], conversation[position]["content"]
            if not any(message["role"] == "user" for message in context) or not real_answer.strip():
                raise InvalidInputError(
                    f"row {index + 1}, reply {turn}: SPIN needs a user message before the reply and a non-empty reply"
                )
            prompt_id = f"p{index:06d}" if conversation_turn != "every" else f"p{index:06d}-t{turn}"
            rows.append({"prompt_id": prompt_id, "prompt": context, "real_answer": real_answer, "turn": turn})
    single_messages = all(len(row["prompt"]) == 1 and row["prompt"][0]["role"] == "user" for row in rows)
    if single_messages:
        for row in rows:
            row["prompt"] = row["prompt"][0]["content"]
    summary = {
        "conversation_turn": conversation_turn,
        "rows": len(used_rows),
        "rows_in_dataset": len(sft_rows),
        "prompts": len(rows),
        "multi_turn_rows": multi_turn_rows,
        "replies_left_out": replies_left_out,
        "prompt_shape": "text" if single_messages else "messages",
    }
    return rows, summary


def prompt_messages(prompt: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """A SPIN prompt as chat messages: text is one user message, a conversation stays as it is."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": message["role"], "content": message["content"]} for message in prompt]


def spin_pair(prompt_row: dict[str, Any], generated_answer: str, iteration: int) -> dict[str, Any]:
    """One SPIN row: real and generated as conversations ending in the reply, plus the flat preference view."""
    context = prompt_messages(prompt_row["prompt"])
    return {
        "prompt_id": prompt_row["prompt_id"],
        "iteration": iteration,
        "turn": prompt_row.get("turn", 1),
        "prompt": prompt_row["prompt"],
        "chosen": prompt_row["real_answer"],
        "rejected": generated_answer,
        "real": [*context, {"role": "assistant", "content": prompt_row["real_answer"]}],
        "generated": [*context, {"role": "assistant", "content": generated_answer}],
    }


def run_spin(
    config: SpinConfig, inputs: SpinInputs, backends: BackendLoader, store: RunStore, progress: Progress
) -> PipelineResult:
    """Run (or resume) every iteration; each finished one, old and new, is published at once.

    Iteration t publishes its pairs (`pairs-iter<t>`) and p_{t+1} (`iter<t>`, trained from the run's
    model for t = 0, else from `iter<t-1>`), so a crashed worker loses no finished iteration; a
    resume publishes the finished ones again, which updates their entries. The result lists them all.
    """
    from pipelines.training.examples import read_rows

    progress.stage("load model", total=1)
    base_dir = backends.model_directory(inputs.model)
    progress.advance(1)
    if not store.exists(SPIN_PROMPTS_FILE):
        rows, prompts_summary = build_spin_prompts(
            read_rows(inputs.sft_path), config.max_prompts, config.conversation_turn
        )
        store.write_json(prompts_summary, PROMPTS_SUMMARY_FILE)
        store.write_jsonl(rows, SPIN_PROMPTS_FILE)
        if prompts_summary["replies_left_out"]:
            progress.log(
                f"{prompts_summary['multi_turn_rows']} multi-turn rows: {prompts_summary['replies_left_out']} later "
                f"replies left out (conversation_turn {config.conversation_turn!r}; 'every' uses them all)"
            )
    prompts = list(store.read_jsonl(SPIN_PROMPTS_FILE))
    result = PipelineResult()
    current = base_dir
    for iteration in range(config.iterations):
        iteration_store = RunStore(store.path(f"iter-{iteration}"))
        step_progress = StagePrefix(progress, f"iter {iteration} · ")
        if iteration_store.exists(SUMMARY_FILE):
            summary = iteration_store.read_json(SUMMARY_FILE)
            progress.log(f"iteration {iteration} already finished: {summary['model_dir']}")
        else:
            generator = _generator_spec(current, inputs.model)
            summary = _run_iteration(
                config, iteration, generator, prompts, store, iteration_store, step_progress, backends
            )
        finished = _iteration_outputs(config, iteration, summary, store)
        progress.publish(finished)
        result.artifacts += finished.artifacts
        result.models += finished.models
        result.summary = finished.summary
        current = Path(summary["model_dir"])
    return result


def _generator_spec(model_dir: Path, base: BackendSpec) -> BackendSpec:
    """p_t as a backend spec: the weights in `model_dir`, at the base model's dtype."""
    return {"kind": "transformers", "source": "run", "path": str(model_dir), "dtype": base.get("dtype", "")}


def _iteration_outputs(config: SpinConfig, iteration: int, summary: dict[str, Any], store: RunStore) -> PipelineResult:
    """A finished iteration as outputs: its pairs, its model (the chain iter0 -> iter1 -> ...), the run's table."""
    pairs_name = f"pairs-iter{iteration}"
    run_summary: dict[str, Any] = {"iterations": iteration_rows(store, iteration + 1)}
    if store.exists(PROMPTS_SUMMARY_FILE):  # how the rows became prompts: turn mode, replies left out
        run_summary["prompts"] = store.read_json(PROMPTS_SUMMARY_FILE)
    return PipelineResult(
        artifacts=[ArtifactOutput(name=pairs_name, kind="preferences", jsonl_path=Path(summary["pairs_path"]))],
        models=[
            ModelOutput(
                key=f"iter{iteration}",
                output_dir=Path(summary["model_dir"]),
                parent="model" if iteration == 0 else f"iter{iteration - 1}",
                dataset=pairs_name,
                label=f"SPIN iter{iteration}",
                training_config={**config.training_for(iteration).to_dict(), "spin_iteration": iteration},
                metrics=summary["metrics"],
                parameter_count=summary["parameter_count"],
            )
        ],
        summary=run_summary,
    )


def _run_iteration(
    config: SpinConfig,
    iteration: int,
    generator: BackendSpec,
    prompts: list[dict[str, Any]],
    store: RunStore,
    iteration_store: RunStore,
    progress: Progress,
    backends: BackendLoader,
) -> dict[str, Any]:
    from pipelines.training.preference import run_preference

    model_dir = Path(generator["path"])
    started = time.monotonic()
    generation_seconds = 0.0
    if not iteration_store.exists(PAIRS_FILE):
        generation_started = time.monotonic()
        generated = _generate(config, iteration, generator, prompts, iteration_store, progress, backends)
        pairs = [spin_pair(row, generated[row["prompt_id"]], iteration) for row in prompts]
        iteration_store.write_jsonl(pairs, PAIRS_FILE)
        generation_seconds = time.monotonic() - generation_started
    if not iteration_store.exists(TRAIN_FILE):
        rows = list(iteration_store.read_jsonl(PAIRS_FILE))
        if config.mix_previous and iteration > 0:
            rows += list(store.read_jsonl(f"iter-{iteration - 1}", PAIRS_FILE))
        iteration_store.write_jsonl(rows, TRAIN_FILE)
    training = config.training_for(iteration)
    training_result = run_preference(
        training, model_dir, None, iteration_store.path(TRAIN_FILE), RunStore(iteration_store.path("train")), progress
    )
    train_rows = sum(1 for _ in iteration_store.read_jsonl(TRAIN_FILE))
    summary = {
        "iteration": iteration,
        "generator_dir": str(model_dir),
        "model_dir": training_result.output_dir,
        "pairs_path": str(iteration_store.path(PAIRS_FILE)),
        "pairs": len(prompts),
        "train_pairs": train_rows,
        "learning_rate": training.training.learning_rate,
        "beta": training.beta,
        "steps": training_result.steps,
        "metrics": training_result.metrics,
        "parameter_count": training_result.parameter_count,
        "generation_seconds": round(generation_seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
    }
    iteration_store.write_json(summary, SUMMARY_FILE)
    return summary


def _generate(
    config: SpinConfig,
    iteration: int,
    generator: BackendSpec,
    prompts: list[dict[str, Any]],
    iteration_store: RunStore,
    progress: Progress,
    backends: BackendLoader,
) -> dict[str, str]:
    """p_t's one answer per prompt, through the generate pipeline (batched, resumable by batch)."""
    generate_store = RunStore(iteration_store.path("generate"))
    write_prompts(generate_store, prompts)
    sampling = config.generation
    if sampling.seed is not None:  # a fresh draw each iteration, the same one on a resume
        sampling = type(sampling).from_dict({**sampling.to_dict(), "seed": sampling.seed + 1000 * iteration})
    loader = _FreshGenerator(backends)
    try:
        generated = run_generate(
            GenerateConfig(sampling=sampling, batch_size=config.generation_batch_size),
            GenerateInputs(model=generator),
            loader,
            generate_store,
            progress,
        )
    finally:
        loader.close()
    (generations,) = generated.artifacts
    return {row["prompt_id"]: row["responses"][0].lstrip() for row in read_jsonl_rows(generations.jsonl_path)}


class _FreshGenerator:
    """The run's loader as the generate step sees it: p_t is loaded fresh and closed after generation.

    p_t is a model just trained that no later job asks for, so it is not kept warm (`fresh=True`), and
    SPIN closes it before training needs the memory. It loads only when a batch is still missing, so
    a resume whose answers are all on disk loads none.
    """

    def __init__(self, backends: BackendLoader) -> None:
        self.backends = backends
        self.backend: LLMBackend | None = None

    def load(self, spec: BackendSpec, *, fresh: bool = False) -> LLMBackend:
        if self.backend is None:
            self.backend = self.backends.load(spec, fresh=True)
        return self.backend

    def release_all(self) -> None:
        self.backends.release_all()

    def model_directory(self, spec: BackendSpec) -> Path:
        return self.backends.model_directory(spec)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

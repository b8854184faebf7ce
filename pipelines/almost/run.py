"""ALMoST end to end: prompt generation (pg) -> response generation (rg) -> synthetic comparisons (cs) ->
reward model (rm) -> reward-model-guided self-play (RMSP), each step resumable from its files.

Run directory layout (every file appears atomically; a restart skips what exists):

    inputs.json                      seeds, instruction line and demonstration prompts, as first seen (written
                                     by whoever starts the run: `AlmostInputs.texts()`)
    pg/rounds/, pg/prompts.jsonl     generated prompts and every candidate's verdict
    rg/<configuration>/, rg/<configuration>.jsonl   one response per prompt and configuration
    cs/comparisons-all.jsonl         every rubric-ordered candidate pair with its filter verdicts
    cs/comparisons.jsonl, cs/counts.json            the kept pairs, and counts before/after each filter
    rm/                              the training layer's store: checkpoints, final/ (the reward model)
    rmsp/                            samples, scores, demonstrations.jsonl (best-of-n), summary.json
    summary.json                     the numbers of every step; its presence means the run is done
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.almost.comparisons import ALL_FILE, KEPT_FILE, build_comparisons
from pipelines.almost.config import RESPONSE_RULES, AlmostConfig, reward_batch
from pipelines.almost.filters import response_failures
from pipelines.almost.prompt_generation import PG_PROMPTS_FILE, PG_SUMMARY_FILE, generate_prompts
from pipelines.almost.prompts import AlmostInputs
from pipelines.almost.response_generation import check_demonstrations, generate_responses
from pipelines.almost.self_play import DEMONSTRATIONS_FILE, ScorerFactory, rm_guided_self_play
from pipelines.common.jsonl import read_jsonl_rows
from pipelines.common.progress import Progress, StagePrefix
from pipelines.common.result import ArtifactOutput, ModelOutput, PipelineResult
from pipelines.common.store import RunStore
from pipelines.common.tables import parquet_twin, write_table
from pipelines.errors import InvalidInputError
from pipelines.llm.loader import BackendLoader
from pipelines.training.examples import split_held_out

SUMMARY_FILE = "summary.json"
REWARD_DIR = "rm"
MIN_PAIRS = 2
"""The reward model needs at least this many kept comparisons (one to train on, one to hold out)."""
REWARD_MODEL_KEY = "reward_model"
"""The reward model's output key: the registry entry lands in the summary as `reward_model` / `reward_model_id`."""
REWARD_BASE_ROLE = "reward_base"
"""The role under which the worker names the reward model's base (its lineage parent)."""


def run_almost(
    config: AlmostConfig,
    inputs: AlmostInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
    *,
    scorer_for: ScorerFactory | None = None,
    embedder_loader: Callable[[], Any] | None = None,
) -> PipelineResult:
    """Run (or resume) every step; each finished step's numbers go out at once (`progress.publish`), and
    so do the reward model and its comparisons as soon as it is trained.

    A model is loaded only when a step still needs it; `backends.release_all()` frees the generators
    before the reward model trains. `scorer_for` and `embedder_loader` let tests and scripts hand in
    the RMSP scorer and the prompt-novelty embedder they already hold.
    """
    from pipelines.training.reward import run_reward

    check_demonstrations(config, inputs)  # before any generation: a missing dialogue must not cost an hour
    summary: dict[str, Any] = {}

    def finished(step: str, numbers: dict[str, Any]) -> None:
        summary[step] = numbers
        progress.publish(PipelineResult(summary={step: numbers}))

    if store.exists(PG_PROMPTS_FILE):  # done: do not load the prompt model just to read a file
        prompts = list(store.read_jsonl(PG_PROMPTS_FILE))
    else:
        prompts = generate_prompts(
            config.prompt_generation,
            inputs,
            backends.load(inputs.models[config.prompt_model]),
            store,
            progress,
            embedder_loader=embedder_loader,
        )
    finished(
        "prompt_generation",
        {**store.read_json(PG_SUMMARY_FILE), "model": config.prompt_model, "seeds": len(inputs.seed_prompts)},
    )

    responses = generate_responses(config, inputs, prompts, backends, store, progress)
    finished(
        "response_generation",
        {"configurations": [response_statistics(name, rows, config) for name, rows in responses.items()]},
    )

    counts = build_comparisons(config, prompts, responses, store, progress)
    finished("comparisons", counts)
    if counts["kept"] < MIN_PAIRS:
        raise InvalidInputError(
            f"only {counts['kept']} of {counts['candidates']} candidate pairs survived the filters; "
            f"the reward model needs at least {MIN_PAIRS}. Switch off the filters that removed most "
            f"(see the counts), or generate more prompts"
        )
    artifacts = [
        _table("comparisons", "comparisons", store.path(KEPT_FILE)),
        _table("comparisons-all", "comparisons", store.path(ALL_FILE)),
    ]
    progress.publish(PipelineResult(artifacts=list(artifacts)))

    backends.release_all()  # the reward model trains with the generators' memory back
    reward = run_reward(
        config.reward,
        backends.model_directory(inputs.reward_model),
        store.path(KEPT_FILE),
        RunStore(store.path(REWARD_DIR)),
        StagePrefix(progress, "rm · "),
    )
    reward_model = ModelOutput(
        key=REWARD_MODEL_KEY,
        output_dir=Path(reward.output_dir),
        task="reward",
        parent=REWARD_BASE_ROLE,
        dataset="comparisons",
        label="ALMoST reward model",
        training_config=config.reward.to_dict(),
        metrics=reward.metrics,
        parameter_count=reward.parameter_count,
    )
    held_out = len(split_held_out(list(range(counts["kept"])), config.reward.eval_fraction, seed=0)[1])
    summary["reward_training"] = {
        "model_dir": reward.output_dir,
        "steps": reward.steps,
        "train_pairs": counts["kept"] - held_out,
        "held_out_pairs": held_out,
        "held_out_accuracy": reward.metrics.get("eval/accuracy"),
        "held_out_accuracy_at_start": reward.metrics.get("start_eval/accuracy"),
        "held_out_margin": reward.metrics.get("eval/rewards/margins"),
        "train_loss": reward.metrics.get("train_loss"),
        "batch": reward_batch(config.reward),
        # Token lengths against the limits and the pairs cut or dropped: nothing is cut unseen.
        "lengths": dict(reward.lengths),
    }
    progress.publish(PipelineResult(models=[reward_model], summary={"reward_training": summary["reward_training"]}))

    if config.rmsp.enabled:
        finished(
            "self_play",
            rm_guided_self_play(
                config, inputs, prompts, backends, reward.output_dir, store, progress, scorer_for=scorer_for
            ),
        )
        artifacts.append(_table("rmsp-demonstrations", "sft", store.path(DEMONSTRATIONS_FILE)))

    store.write_json(summary, SUMMARY_FILE)
    return PipelineResult(
        artifacts=artifacts,
        models=[reward_model],
        summary={
            **summary,
            "prompts_generated": summary["prompt_generation"]["prompts"],
            "comparisons_kept": counts["kept"],
            "reward_held_out_accuracy": summary["reward_training"]["held_out_accuracy"],
        },
    )


def _table(name: str, kind: str, jsonl_path: Path) -> ArtifactOutput:
    """The step's JSONL as an artifact, with its parquet twin (written once: a rerun finds it)."""
    if not parquet_twin(jsonl_path).exists():  # the JSONL is rewritten as it was, with its twin
        write_table(jsonl_path, list(read_jsonl_rows(jsonl_path)))
    return ArtifactOutput(name=name, kind=kind, jsonl_path=jsonl_path, parquet_path=parquet_twin(jsonl_path))


def response_statistics(name: str, rows: list[dict[str, Any]], config: AlmostConfig) -> dict[str, Any]:
    """One configuration's responses: how many, how long, how many hit the token limit, which rules they break."""
    lengths = [len(row["response"]) for row in rows]
    broken: Counter[str] = Counter()
    for row in rows:
        broken.update(response_failures(row["response"], config.comparisons))
    return {
        "configuration": name,
        "responses": len(rows),
        "non_empty": sum(1 for length in lengths if length),
        "mean_chars": round(statistics.fmean(lengths), 1) if lengths else 0,
        "cut_at_max_tokens": sum(1 for row in rows if row.get("finish_reason") == "length"),
        "breaking": {rule: broken[rule] for rule in RESPONSE_RULES if broken[rule]},
    }

"""ALMoST end to end: pg -> rg -> cs -> reward model -> RMSP, each step resumable from its files.

Run directory layout (every file appears atomically; a restart skips what exists):

    inputs.json                      seeds, instruction line and demonstration prompts, as first seen
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.almost.config import RESPONSE_RULES, AlmostConfig, reward_batch
from pipelines.almost.cs import ALL_FILE, KEPT_FILE, build_comparisons
from pipelines.almost.filters import response_failures
from pipelines.almost.pg import PG_PROMPTS_FILE, PG_SUMMARY_FILE, generate_prompts
from pipelines.almost.prompts import AlmostInputs
from pipelines.almost.rg import BackendProvider, check_demonstrations, generate_responses
from pipelines.almost.rmsp import DEMONSTRATIONS_FILE, ScorerFactory, rm_guided_self_play
from pipelines.common.jsonl import read_jsonl_rows
from pipelines.common.progress import Progress, StagePrefix
from pipelines.common.store import RunStore
from pipelines.common.tables import parquet_twin, write_table
from pipelines.errors import InvalidInputError

INPUTS_FILE = "inputs.json"
SUMMARY_FILE = "summary.json"
REWARD_DIR = "rm"
MIN_PAIRS = 2
"""The reward model needs at least this many kept comparisons (one to train on, one to hold out)."""

StepCallback = Callable[[str, dict[str, Any]], None]


@dataclass
class AlmostResult:
    summary: dict[str, Any]
    comparisons_path: Path
    comparisons_all_path: Path
    reward_model_dir: str
    reward_metrics: dict[str, Any]
    reward_parameter_count: int
    demonstrations_path: Path | None


def snapshot_inputs(store: RunStore, inputs: AlmostInputs | None) -> AlmostInputs:
    """The inputs of the first attempt: written once, then always read back (a resume sees the same seeds)."""
    if not store.exists(INPUTS_FILE):
        if inputs is None:
            raise InvalidInputError(f"{INPUTS_FILE} is missing from the run directory and no inputs were given")
        store.write_json(inputs.to_dict(), INPUTS_FILE)
    return AlmostInputs.from_dict(store.read_json(INPUTS_FILE))


def run_almost(
    config: AlmostConfig,
    inputs: AlmostInputs | None,
    store: RunStore,
    progress: Progress,
    *,
    backend_for: BackendProvider,
    reward_base_dir: str | Path,
    release_backends: Callable[[], None] | None = None,
    scorer_for: ScorerFactory | None = None,
    embedder_loader: Callable[[], Any] | None = None,
    on_step: StepCallback | None = None,
) -> AlmostResult:
    """Run (or resume) every step; `on_step(name, numbers)` reports each finished step, old or new.

    `backend_for(model_label)` returns a loaded backend for a rubric model; the caller owns them and
    `release_backends()` (if given) frees them before the reward model trains and scores.
    """
    from pipelines.training.reward import run_reward

    inputs = snapshot_inputs(store, inputs)
    check_demonstrations(config, inputs)  # before any generation: a missing dialogue must not cost an hour
    report = on_step or (lambda name, numbers: None)
    summary: dict[str, Any] = {}

    if store.exists(PG_PROMPTS_FILE):  # done: do not load the prompt model just to read a file
        prompts = list(store.read_jsonl(PG_PROMPTS_FILE))
    else:
        prompts = generate_prompts(
            config.prompt_generation,
            inputs,
            backend_for(config.prompt_model),
            store,
            progress,
            embedder_loader=embedder_loader,
        )
    summary["pg"] = {
        **store.read_json(PG_SUMMARY_FILE),
        "model": config.prompt_model,
        "seeds": len(inputs.seed_prompts),
    }
    report("pg", summary["pg"])

    responses = generate_responses(config, inputs, prompts, backend_for, store, progress)
    summary["rg"] = {"configurations": [response_statistics(name, rows, config) for name, rows in responses.items()]}
    report("rg", summary["rg"])

    summary["cs"] = build_comparisons(config, prompts, responses, store, progress)
    report("cs", summary["cs"])
    if summary["cs"]["kept"] < MIN_PAIRS:
        raise InvalidInputError(
            f"only {summary['cs']['kept']} of {summary['cs']['candidates']} candidate pairs survived the filters; "
            f"the reward model needs at least {MIN_PAIRS}. Switch off the filters that removed most "
            f"(see the counts), or generate more prompts"
        )

    if release_backends is not None:
        release_backends()
    reward = run_reward(
        config.reward,
        reward_base_dir,
        store.path(KEPT_FILE),
        RunStore(store.path(REWARD_DIR)),
        StagePrefix(progress, "rm · "),
    )
    summary["rm"] = {
        "model_dir": reward.output_dir,
        "steps": reward.steps,
        "train_pairs": summary["cs"]["kept"] - _held_out_count(summary["cs"]["kept"], config.reward.eval_fraction),
        "held_out_pairs": _held_out_count(summary["cs"]["kept"], config.reward.eval_fraction),
        "held_out_accuracy": reward.metrics.get("eval/accuracy"),
        "held_out_accuracy_at_start": reward.metrics.get("start_eval/accuracy"),
        "held_out_margin": reward.metrics.get("eval/rewards/margins"),
        "train_loss": reward.metrics.get("train_loss"),
        "batch": reward_batch(config.reward),
    }
    report("rm", summary["rm"])

    demonstrations_path: Path | None = None
    if config.rmsp.enabled:
        summary["rmsp"] = rm_guided_self_play(
            config,
            inputs,
            prompts,
            backend_for,
            reward.output_dir,
            store,
            progress,
            scorer_for=scorer_for,
            release_backends=release_backends,
        )
        demonstrations_path = store.path(DEMONSTRATIONS_FILE)
        report("rmsp", summary["rmsp"])

    for jsonl in (ALL_FILE, KEPT_FILE, *([DEMONSTRATIONS_FILE] if demonstrations_path else [])):
        jsonl_path = store.path(jsonl)
        if not parquet_twin(jsonl_path).exists():  # written once; the JSONL is rewritten as it was, with its twin
            write_table(jsonl_path, list(read_jsonl_rows(jsonl_path)))
    store.write_json(summary, SUMMARY_FILE)
    return AlmostResult(
        summary=summary,
        comparisons_path=store.path(KEPT_FILE),
        comparisons_all_path=store.path(ALL_FILE),
        reward_model_dir=reward.output_dir,
        reward_metrics=reward.metrics,
        reward_parameter_count=reward.parameter_count,
        demonstrations_path=demonstrations_path,
    )


def _held_out_count(pairs: int, fraction: float) -> int:
    # split_held_out's rule: at least one, never all.
    if fraction <= 0 or pairs < 2:
        return 0
    return min(max(1, round(pairs * fraction)), pairs - 1)


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


def parquet_path(jsonl_path: Path) -> Path:
    """For workers/methods/almost.py until the ALMoST kind module uses `pipelines.common.tables.parquet_twin`."""
    return parquet_twin(jsonl_path)

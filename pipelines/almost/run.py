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
    policy/, sft/, rl/               with the policy stages on: held-out prompts, the SFT and RL training
                                     stores, and the three policies' evaluation (pipelines/almost/policy.py)
    timings.json                     wall seconds per stage
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
from pipelines.almost.policy import (
    HELD_OUT_FILE,
    RL_PROMPTS_FILE,
    StageClock,
    evaluate_policies,
    split_policy_prompts,
    train_rl_policy,
    train_sft_policy,
)
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
POLICY_BASE_ROLE = "policy_base"
"""The role under which the worker names the SFT policy's base (the reward base unless the run names another)."""
SFT_POLICY_KEY = "sft_policy"
RL_POLICY_KEY = "rl_policy"


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
    clock = StageClock(store)

    def finished(step: str, numbers: dict[str, Any]) -> None:
        summary[step] = numbers
        progress.publish(PipelineResult(summary={step: numbers}))

    if store.exists(PG_PROMPTS_FILE):  # done: do not load the prompt model just to read a file
        prompts = list(store.read_jsonl(PG_PROMPTS_FILE))
    else:
        prompts = clock.timed("prompt_generation", lambda: generate_prompts(
            config.prompt_generation,
            inputs,
            backends.load(inputs.models[config.prompt_model]),
            store,
            progress,
            embedder_loader=embedder_loader,
        ))
    finished(
        "prompt_generation",
        {**store.read_json(PG_SUMMARY_FILE), "model": config.prompt_model, "seeds": len(inputs.seed_prompts)},
    )

    responses = clock.timed(
        "response_generation", lambda: generate_responses(config, inputs, prompts, backends, store, progress)
    )
    finished(
        "response_generation",
        {"configurations": [response_statistics(name, rows, config) for name, rows in responses.items()]},
    )

    counts = build_comparisons(config, prompts, responses, store, progress)
    finished("comparisons", counts)
    if counts["kept"] < MIN_PAIRS:
        raise InvalidInputError(too_few_pairs_message(counts))
    artifacts = [
        _table("comparisons", "comparisons", store.path(KEPT_FILE)),
        _table("comparisons-all", "comparisons", store.path(ALL_FILE)),
    ]
    progress.publish(PipelineResult(artifacts=list(artifacts)))

    backends.release_all()  # the reward model trains with the generators' memory back
    reward = clock.timed("reward_model", lambda: run_reward(
        config.reward,
        backends.model_directory(inputs.reward_model),
        store.path(KEPT_FILE),
        RunStore(store.path(REWARD_DIR)),
        StagePrefix(progress, "rm · "),
    ))
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
        policy_prompts, _held_out = split_policy_prompts(config, prompts, store)
        finished(
            "self_play",
            clock.timed("self_play", lambda: rm_guided_self_play(
                config, inputs, policy_prompts, backends, reward.output_dir, store, progress, scorer_for=scorer_for
            )),
        )
        demonstrations = _table("rmsp-demonstrations", "sft", store.path(DEMONSTRATIONS_FILE))
        artifacts.append(demonstrations)
        progress.publish(PipelineResult(artifacts=[demonstrations]))  # the SFT policy names it as its data
        if config.policy.sft_enabled:
            artifacts += _train_policies(config, inputs, backends, Path(reward.output_dir), policy_prompts, store, progress, clock, finished)

    summary["stage_seconds"] = dict(clock.seconds)
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


def _train_policies(
    config: AlmostConfig,
    inputs: AlmostInputs,
    backends: BackendLoader,
    reward_dir: Path,
    policy_prompts: list[dict[str, Any]],
    store: RunStore,
    progress: Progress,
    clock: StageClock,
    finished: Callable[[str, dict[str, Any]], None],
) -> list[ArtifactOutput]:
    """SFT on the demonstrations, RL against the reward model when enabled, then base/SFT/RL on held-out prompts.

    Each model goes to the registry as soon as it is trained (`progress.publish`), with its lineage:
    SFT policy <- policy base, trained on the demonstrations; RL policy <- SFT policy, trained on the
    RL prompts against the run's reward model.
    """
    backends.release_all()  # the trainers load their own copies
    base_dir = backends.model_directory(inputs.policy_model or inputs.reward_model)
    held_out = _table("policy-held-out-prompts", "queries", store.path(HELD_OUT_FILE))
    progress.publish(PipelineResult(artifacts=[held_out]))
    sft = clock.timed("sft", lambda: train_sft_policy(config, base_dir, store.path(DEMONSTRATIONS_FILE), store, progress))
    sft_output = ModelOutput(
        key=SFT_POLICY_KEY, output_dir=Path(sft.output_dir), parent=POLICY_BASE_ROLE, dataset="rmsp-demonstrations",
        label="ALMoST SFT policy", training_config=config.policy.sft.to_dict(), metrics=sft.metrics,
        parameter_count=sft.parameter_count,
    )
    finished("sft", {"model_dir": sft.output_dir, "steps": sft.steps, "train_loss": sft.metrics.get("train_loss"),
                     "lengths": dict(sft.lengths)})
    progress.publish(PipelineResult(models=[sft_output]))
    policies = {"base": Path(base_dir), "sft": Path(sft.output_dir)}
    artifacts = [held_out]
    if config.policy.rl_enabled:
        rl = clock.timed("rl", lambda: train_rl_policy(config, Path(sft.output_dir), reward_dir, policy_prompts, store, progress))
        rl_prompts = _table("rl-prompts", "queries", store.path(RL_PROMPTS_FILE))
        progress.publish(PipelineResult(artifacts=[rl_prompts]))
        artifacts.append(rl_prompts)
        from pipelines.training.rl.run import rl_summary

        figures = rl_summary(RunStore(store.path("rl")))
        rl_output = ModelOutput(
            key=RL_POLICY_KEY, output_dir=Path(rl.output_dir), parent=SFT_POLICY_KEY, dataset="rl-prompts",
            reward_model=REWARD_MODEL_KEY, label=f"ALMoST RL policy ({config.policy.rl.algorithm})",
            training_config=config.policy.rl.to_dict(), metrics={**rl.metrics, **figures},
            parameter_count=rl.parameter_count,
        )
        finished("rl", {"model_dir": rl.output_dir, "steps": rl.steps, "algorithm": config.policy.rl.algorithm, **figures})
        progress.publish(PipelineResult(models=[rl_output]))
        policies["rl"] = Path(rl.output_dir)
    evaluation = clock.timed(
        "policy_evaluation", lambda: evaluate_policies(config, policies, reward_dir, store, progress)
    )
    finished("policy_evaluation", evaluation)
    return artifacts


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


def too_few_pairs_message(counts: dict[str, Any], shown: int = 3) -> str:
    """Why the run stops at cs, naming the enabled filters that failed the most candidate pairs."""
    failing = sorted(
        (row for row in counts.get("filters", []) if row.get("enabled") and row.get("failed")),
        key=lambda row: -row["failed"],
    )[:shown]
    total = counts.get("candidates", 0)
    worst = ", ".join(f"{row['filter']} ({row['failed']} of {total})" for row in failing) or "none"
    return (
        f"only {counts.get('kept', 0)} of {total} candidate pairs survived the filters; the reward model needs "
        f"at least {MIN_PAIRS}. The filters that failed most pairs: {worst}. Switch some of them off, give the "
        f"responses more tokens (a response cut off at max_tokens fails no_final_punctuation), or generate more prompts"
    )

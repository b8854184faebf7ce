"""RL from a reward model, end to end: prompts -> held-out split -> PPO (ours) or RLOO/GRPO (TRL) ->
the policy under final/, with its held-out curve and samples. Imports torch.

Store layout (a rerun resumes from the newest checkpoint; a finished run returns its result):

    training_config.json          what was trained, on what (policy, reward model, prompts)
    checkpoints/checkpoint-<step> resumable state (policy, optimizer, scheduler, RNG; PPO: the value model too)
    held_out/curve.jsonl          reward mean/spread, KL, length on the held-out prompts, per evaluation
    held_out/samples/step-N.json  a few held-out responses per evaluation
    final/                        the policy (model/, or adapter/ and merged/), result.json
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.training.formatting import prompt_text
from pipelines.training.models import load_tokenizer
from pipelines.training.result import TrainingResult
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.files import read_curve
from pipelines.training.rl.held_out import HeldOutEvaluator
from pipelines.training.rl.prompts import RLPrompts, read_prompt_rows, split_prompts
from pipelines.training.rl.rewards import RewardFunction
from pipelines.training.runtime import resolve_runtime
from pipelines.training.saving import finished_result

PROMPTS_FILE = "prompts.json"
"""The split this run trains and evaluates on (written once: a resumed run reads the same split)."""


def run_rl(
    config: RLConfig,
    policy_dir: str | Path,
    reward_model_dir: str | Path,
    prompts_path: str | Path,
    store: RunStore,
    progress: Progress,
    *,
    reward: RewardFunction | None = None,
    held_out_path: str | Path | None = None,
) -> TrainingResult:
    """Train the policy at `policy_dir` against the reward model at `reward_model_dir` on the prompts file.

    The reference (the KL anchor) is the policy as it starts. `reward` lets a caller hand in a reward
    function it already holds (tests use a toy one); by default the reward model is loaded.
    `held_out_path`: prompts the caller holds out itself (ALMoST's chain measures its base and SFT
    policies on them too); every prompt of `prompts_path` then trains, and `held_out_prompts` of the
    config is what the caller used to make that file.
    """
    done = finished_result(store)
    if done is not None:
        return done
    policy_dir, reward_model_dir = Path(policy_dir), Path(reward_model_dir)
    args = config.training
    runtime = resolve_runtime(args)
    main_process = is_main_process()
    device = rank_device(runtime.device)
    if main_process:
        store.write_json(
            {"kind": "rl", "config": config.to_dict(), "model_dir": str(policy_dir),
             "reward_model_dir": str(reward_model_dir), "dataset_path": str(prompts_path)},
            "training_config.json",
        )
    tokenizer = load_tokenizer(policy_dir, args.prompt_format)
    prompts = rl_prompts(config, tokenizer, prompts_path, store, held_out_path, write=main_process)
    steps = config.rl_steps(len(prompts.train), processes=int(os.environ.get("WORLD_SIZE", "1")))
    config = replace(config, training=replace(args, max_steps=steps))
    args = config.training
    progress.log(
        f"{steps} RL steps of {config.prompts_per_step} prompts; "
        f"{len(prompts.train)} training prompts, {len(prompts.held_out)} held out"
        + (f", {prompts.dropped_over_length} longer than max_prompt_length left out" if prompts.dropped_over_length else "")
    )
    # PPO with LoRA reads its reference and reward model through its own adapters switched off
    # (train_ppo; pipelines/training/rl/shared_weights.py), so neither is loaded a second time here.
    shares_frozen_weights = config.algorithm == "ppo" and args.adapter == "lora"
    if reward is None and not shares_frozen_weights:
        reward = load_reward_function(config, reward_model_dir, device, progress)
    # The held-out figures are measured once, by the main process; the other ranks only train.
    reference = load_reference(policy_dir, runtime, device) if main_process and not shares_frozen_weights else None
    evaluator = None if not main_process else HeldOutEvaluator(
        config=config,
        tokenizer=tokenizer,
        prompt_ids=encode_prompts(tokenizer, prompts.held_out, args.prompt_format),
        prompts=prompts.held_out,
        reward=reward,
        reference=reference,
        store=store,
        progress=progress,
    )
    if config.algorithm == "ppo":
        from pipelines.training.rl.ppo import train_ppo

        return train_ppo(
            config,
            policy_dir=policy_dir,
            reward_model_dir=reward_model_dir,
            reference=reference,
            tokenizer=tokenizer,
            train_prompts=prompts.train,
            train_prompt_ids=encode_prompts(tokenizer, prompts.train, args.prompt_format),
            reward=reward,
            evaluator=evaluator,
            store=store,
            runtime=runtime,
            progress=progress,
        )
    from pipelines.training.rl.trl_trainers import train_with_trl

    return train_with_trl(
        config,
        policy_dir=policy_dir,
        tokenizer=tokenizer,
        train_prompts=prompts.train,
        reward=reward,
        evaluator=evaluator,
        store=store,
        runtime=runtime,
        progress=progress,
    )


def load_reward_function(config: RLConfig, reward_model_dir: Path, device: str, progress: Progress, model: Any = None) -> RewardFunction:
    """The reward model as the run's reward function; `model`: its weights already in memory."""
    progress.stage("load reward model", total=1)
    reward = RewardFunction(
        reward_model_dir,
        batch_size=config.reward_batch_size,
        max_length=config.training.max_length + config.max_new_tokens,
        device=device,
        missing_eos_penalty=config.missing_eos_penalty,
        model=model,
    )
    progress.advance()
    return reward


def rl_prompts(
    config: RLConfig,
    tokenizer: Any,
    prompts_path: str | Path,
    store: RunStore,
    held_out_path: str | Path | None = None,
    *,
    write: bool = True,
) -> RLPrompts:
    """The run's split: read back when a previous attempt made it, else made and written once (by the main
    process; the split is seeded, so every rank of a group makes the same one)."""
    if store.exists(PROMPTS_FILE):
        saved = store.read_json(PROMPTS_FILE)
        return RLPrompts(train=saved["train"], held_out=saved["held_out"], dropped_over_length=saved["dropped_over_length"])
    rows = read_prompt_rows(prompts_path)
    given = read_prompt_rows(held_out_path) if held_out_path is not None else []
    args = config.training
    lengths = [len(ids) for ids in encode_prompts(tokenizer, rows + given, args.prompt_format)]
    prompts = split_prompts(
        rows + given,
        held_out=0 if held_out_path is not None else config.held_out_prompts,
        prompt_tokens=lengths,
        max_prompt_length=args.max_prompt_length,
        over_length=args.over_length,
        seed=args.seed,
    )
    if held_out_path is not None:  # the caller's split; over-long prompts are left out of either side
        fitting = {index for index, count in enumerate(lengths) if count <= args.max_prompt_length}
        prompts = RLPrompts(
            train=[row for index, row in enumerate(rows) if index in fitting],
            held_out=[row for index, row in enumerate(given, start=len(rows)) if index in fitting],
            dropped_over_length=prompts.dropped_over_length,
        )
    if write:
        store.write_json(
            {"train": prompts.train, "held_out": prompts.held_out, "dropped_over_length": prompts.dropped_over_length},
            PROMPTS_FILE,
        )
    return prompts


def encode_prompts(tokenizer: Any, prompts: list[Any], prompt_format: str) -> list[list[int]]:
    """Each prompt as the policy reads it (chat template's generation prompt, or ALMoST's raw format)."""
    texts = [prompt_text(tokenizer, messages, prompt_format) for messages in prompts]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []


def is_main_process() -> bool:
    """Rank 0 of a process group (torchrun and Ray set RANK), or a run in one process."""
    return int(os.environ.get("RANK", "0")) == 0


def rank_device(device: str) -> str:
    """This rank's device: its own GPU (LOCAL_RANK) in a group on CUDA, else `device` as it is."""
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if device == "cuda" else device


def load_reference(policy_dir: Path, runtime: Any, device: str | None = None) -> Any:
    """The frozen reference: the policy as it starts, in the run's compute dtype, without gradients."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(runtime.dtype, torch.float32)
    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=dtype).to(device or runtime.device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def rl_summary(store: RunStore) -> dict[str, Any]:
    """The held-out figures at the start and at the end, for the run page and the registry entry."""
    curve = read_curve(store)
    if not curve:
        return {}
    first, last = curve[0], curve[-1]
    summary = {
        "held_out/reward_mean_at_start": first["reward_mean"],
        "held_out/reward_mean": last["reward_mean"],
        "held_out/reward_std": last["reward_std"],
        "held_out/length_mean_at_start": first["length_mean"],
        "held_out/length_mean": last["length_mean"],
        "held_out/evaluations": len(curve),
    }
    if "kl" in last:
        summary["held_out/kl"] = last["kl"]
    return summary

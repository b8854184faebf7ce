"""ALMoST's last two stages, after RMSP: the SFT policy on the self-play demonstrations (ALMoST-SFT), then
RL from synthetic feedback against the run's reward model (RLSF), and the three policies (base, SFT, RL)
measured on the same held-out prompts with the same reward model.

Run directory layout (under the ALMoST run's own):

    policy/held-out.jsonl, policy/rl-prompts.jsonl   the prompts kept out of training, and RL's prompts
    sft/                                             the SFT training store (checkpoints, final/)
    rl/                                              the RL training store (checkpoints, held_out/, final/)
    policy/evaluation.json                           reward, length (and KL for RL) of base, SFT and RL
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.almost.config import AlmostConfig
from pipelines.common.memory import release_freed_memory
from pipelines.common.progress import Progress, StageAndMetricsPrefix
from pipelines.common.store import RunStore
from pipelines.training.examples import split_held_out

HELD_OUT_FILE = "policy/held-out.jsonl"
RL_PROMPTS_FILE = "policy/rl-prompts.jsonl"
EVALUATION_FILE = "policy/evaluation.json"
SFT_DIR = "sft"
RL_DIR = "rl"
SPLIT_SEED = 11


def split_policy_prompts(
    config: AlmostConfig, prompts: list[dict[str, Any]], store: RunStore
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(prompts for RMSP, SFT and RL; held-out prompts): written once, so a resumed run keeps its split.

    Without the policy stages nothing is held out and RMSP sees every prompt, as before.
    """
    count = config.policy.held_out_prompts
    if not count:
        return prompts, []
    if store.exists(HELD_OUT_FILE):
        held_ids = {row["prompt_id"] for row in store.read_jsonl(HELD_OUT_FILE)}
        return [row for row in prompts if row["prompt_id"] not in held_ids], [
            row for row in prompts if row["prompt_id"] in held_ids
        ]
    if len(prompts) <= count:
        from pipelines.errors import InvalidInputError

        raise InvalidInputError(
            f"{len(prompts)} prompts were generated but {count} are to be held out for the policy's evaluation "
            "(policy.rl.held_out_prompts): generate more prompts or hold out fewer"
        )
    train, held_out = split_held_out(prompts, count / len(prompts), seed=SPLIT_SEED)
    train += held_out[count:]
    held_out = held_out[:count]
    store.write_jsonl([{"prompt_id": row["prompt_id"], "prompt": row["prompt"]} for row in held_out], HELD_OUT_FILE)
    return train, held_out


def train_sft_policy(config: AlmostConfig, base_dir: Path, demonstrations: Path, store: RunStore, progress: Progress) -> Any:
    """ALMoST-SFT: the policy base fine-tuned on the RMSP demonstrations (resumes from its checkpoints)."""
    from pipelines.training.sft import run_sft

    return run_sft(
        config.policy.sft, base_dir, demonstrations, RunStore(store.path(SFT_DIR)),
        StageAndMetricsPrefix(progress, "sft · ", "sft/"),
    )


def train_rl_policy(
    config: AlmostConfig,
    sft_dir: Path,
    reward_dir: Path,
    train_prompts: list[dict[str, Any]],
    store: RunStore,
    progress: Progress,
) -> Any:
    """RLSF: the SFT policy trained against the reward model on the RMSP prompts, measured on the held-out ones."""
    from pipelines.training.rl.run import run_rl

    if not store.exists(RL_PROMPTS_FILE):
        store.write_jsonl([{"prompt_id": row["prompt_id"], "prompt": row["prompt"]} for row in train_prompts], RL_PROMPTS_FILE)
    return run_rl(
        config.policy.rl,
        sft_dir,
        reward_dir,
        store.path(RL_PROMPTS_FILE),
        RunStore(store.path(RL_DIR)),
        StageAndMetricsPrefix(progress, "rl · ", "rl/"),
        held_out_path=store.path(HELD_OUT_FILE),
    )


def evaluate_policies(
    config: AlmostConfig,
    policies: dict[str, Path],
    reward_dir: Path,
    store: RunStore,
    progress: Progress,
) -> dict[str, Any]:
    """Each policy's reward (mean, spread), response length and KL to the SFT policy on the held-out prompts.

    Measured alike for every policy (`HeldOutEvaluator`: one sample per prompt at the RL stage's
    temperature with a fixed seed, the same reward model), so base, SFT and RL compare like with like.
    Written once; a resumed run reads it back.
    """
    if store.exists(EVALUATION_FILE):
        return store.read_json(EVALUATION_FILE)
    from pipelines.training.models import load_tokenizer
    from pipelines.training.rl.held_out import HeldOutEvaluator
    from pipelines.training.rl.prompts import read_prompt_rows
    from pipelines.training.rl.rewards import RewardFunction
    from pipelines.training.rl.run import encode_prompts, load_reference
    from pipelines.training.runtime import resolve_runtime

    rl = config.policy.rl
    runtime = resolve_runtime(rl.training)
    held_out = read_prompt_rows(store.path(HELD_OUT_FILE))
    progress.stage("policy evaluation", total=len(policies))
    reward = RewardFunction(
        reward_dir, batch_size=rl.reward_batch_size, max_length=rl.training.max_length + rl.max_new_tokens,
        device=runtime.device, missing_eos_penalty=rl.missing_eos_penalty,
    )
    sft_dir = policies.get("sft")
    reference = load_reference(sft_dir, runtime) if sft_dir is not None else None
    results: dict[str, Any] = {}
    for name, model_dir in policies.items():
        tokenizer = load_tokenizer(model_dir, rl.training.prompt_format)
        evaluator = HeldOutEvaluator(
            config=rl,
            tokenizer=tokenizer,
            prompt_ids=encode_prompts(tokenizer, held_out, rl.training.prompt_format),
            prompts=held_out,
            reward=reward,
            reference=reference if name != "sft" else None,
            store=None,
            progress=progress,
        )
        # The SFT policy is already loaded as the others' reference: measured as it is, not loaded twice.
        model = reference if name == "sft" and reference is not None else load_reference(model_dir, runtime)
        figures = evaluator.evaluate(model, 0, record=False)
        figures.pop("step", None)
        results[name] = figures
        progress.log(f"{name} policy on {len(held_out)} held-out prompts: reward {figures.get('reward_mean')}")
        progress.advance()
        del model
    evaluation = {"held_out_prompts": len(held_out), "kl_to": "sft", "policies": results}
    store.write_json(evaluation, EVALUATION_FILE)
    return evaluation


class StageClock:
    """Wall seconds of each stage that ran in this run, kept in `timings.json` across attempts.

    A stage finished by an earlier attempt keeps that attempt's time; a stage cut short by a crash and
    finished by a later attempt counts the finishing attempt's time only (said on the method page).
    """

    FILE = "timings.json"

    def __init__(self, store: RunStore, clock: Callable[[], float] | None = None) -> None:
        import time

        self.store = store
        self.clock = clock or time.monotonic
        self.seconds: dict[str, float] = store.read_json(self.FILE) if store.exists(self.FILE) else {}

    def timed(self, stage: str, work: Callable[[], Any]) -> Any:
        """`work()`'s value, its wall time recorded; the memory the stage freed then goes back to the system,
        so a training stage's peak is not carried into the next stage."""
        started = self.clock()
        value = work()
        release_freed_memory()
        if stage not in self.seconds:
            self.seconds[stage] = round(self.clock() - started, 1)
            self.store.write_json(self.seconds, self.FILE)
        return value

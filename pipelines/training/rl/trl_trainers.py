"""RLOO and GRPO through TRL 1.16 (`RLOOTrainer`, `GRPOTrainer`), with the reward model as the reward
function, on our checkpointing trainer (atomic checkpoints, resume, cancel). Imports torch and TRL.

How our settings map onto TRL's (the rest are TRL's defaults, listed on the method page):
- a step samples `per_device_batch_size x gradient_accumulation_steps` prompts, `num_generations` responses
  each: TRL's per-device batch counts responses, so it is `per_device_batch_size x num_generations`;
- `kl_coef` -> `beta` (the reference is the policy as it starts; GRPO's own default of 0 would drop it);
- `max_new_tokens` -> `max_completion_length`; `temperature`, `top_p` as they are;
- prompts are formatted by us (chat template or ALMoST's raw format) and handed over as text, so the
  policy reads them exactly as SFT trained it; TRL does not cut prompts (`split_prompts` checked them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training.callbacks import ProgressCallback
from pipelines.training.examples import Messages
from pipelines.training.formatting import prompt_text
from pipelines.training.models import apply_lora, load_model, parameter_counts
from pipelines.training.result import TrainingResult
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.held_out import HeldOutEvaluator
from pipelines.training.rl.rewards import RewardFunction
from pipelines.training.runtime import Runtime
from pipelines.training.saving import save_final
from pipelines.training.trainer import (
    CHECKPOINTS_DIR,
    CheckpointingTrainer,
    latest_checkpoint,
    train_with_resume,
    training_argument_values,
    without_console_printer,
)


class HeldOutCallback(TrainerCallback):
    """Scores the policy on the held-out prompts at the start, every `eval_steps` and at the end."""

    def __init__(self, evaluator: HeldOutEvaluator, eval_steps: int) -> None:
        self.evaluator = evaluator
        self.eval_steps = eval_steps
        self.last_step = -1
        self.last_figures: dict[str, Any] = {}

    def _evaluate(self, model: Any, step: int) -> None:
        if step != self.last_step:
            self.last_figures = self.evaluator.evaluate(model, step) or self.last_figures
            self.last_step = step

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == 0:
            self._evaluate(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step % self.eval_steps == 0:
            self._evaluate(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        self._evaluate(model, state.global_step)


def _trainer_classes(algorithm: str) -> tuple[type, type]:
    if algorithm == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        return GRPOConfig, type("CheckpointingGRPOTrainer", (CheckpointingTrainer, GRPOTrainer), {})
    from trl import RLOOConfig, RLOOTrainer

    return RLOOConfig, type("CheckpointingRLOOTrainer", (CheckpointingTrainer, RLOOTrainer), {})


def train_with_trl(
    config: RLConfig,
    *,
    policy_dir: Path,
    tokenizer: Any,
    train_prompts: list[Messages],
    reward: RewardFunction,
    evaluator: HeldOutEvaluator | None,
    store: RunStore,
    runtime: Runtime,
    progress: Progress,
) -> TrainingResult:
    """Train with TRL's RLOO or GRPO; resumes from the newest checkpoint in the store."""
    from datasets import Dataset

    args = config.training
    if config.ppo != type(config.ppo)():
        progress.log(f"{config.algorithm}: the ppo settings apply to PPO only and are not used")
    config_class, trainer_class = _trainer_classes(config.algorithm)
    checkpoints_dir = store.path(CHECKPOINTS_DIR)
    values = training_argument_values(args, runtime, checkpoints_dir)
    values.update(
        per_device_train_batch_size=args.per_device_batch_size * config.num_generations,
        per_device_eval_batch_size=args.per_device_batch_size * config.num_generations,
        num_generations=config.num_generations,
        max_completion_length=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        top_k=0,
        beta=config.kl_coef,
        log_completions=False,
    )
    try:
        trl_args = config_class(**values)
    except (TypeError, ValueError) as error:
        raise InvalidConfigError(f"{config.algorithm} settings rejected by TRL: {error}") from error
    texts = [prompt_text(tokenizer, messages, args.prompt_format) for messages in train_prompts]
    dataset = Dataset.from_dict({"prompt": texts, "conversation": [json.dumps(m) for m in train_prompts]})
    model = load_model(policy_dir, args, runtime)
    if args.adapter == "lora":
        model = apply_lora(model, args)
    counts = parameter_counts(model)
    callback = ProgressCallback(progress, "train")
    held_out = HeldOutCallback(evaluator, config.eval_steps) if evaluator is not None else None
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward],
        args=trl_args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[callback, held_out] if held_out is not None else [callback],
    )
    without_console_printer(trainer)
    if latest_checkpoint(checkpoints_dir) is None:
        progress.log(f"{config.algorithm}: {len(texts)} prompts, {config.num_generations} responses each per step")
    steps = train_with_resume(trainer, callback, checkpoints_dir, progress)
    metrics = {**callback.last_metrics, **callback.summary}
    if held_out is not None:
        metrics.update({f"held_out/{key}": value for key, value in held_out.last_figures.items() if key != "step"})
    return save_final(
        trainer=trainer,
        tokenizer=tokenizer,
        store=store,
        args=args,
        base_dir=policy_dir,
        merge=True,
        metrics=metrics,
        steps=steps,
        counts=counts,
        progress=progress,
    )

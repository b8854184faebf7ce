"""PPO with a value model and a per-token KL penalty: ALMoST's RL-from-synthetic-feedback stage. Imports torch.

TRL 1.16 ships no PPO trainer, so this is our own compact version of the algorithm of TRL 1.12's
`trl.experimental.ppo.PPOTrainer.train` (itself after "The N Implementation Details of RLHF with PPO").
One PPO step, as there:

1. rollout: sample one response per prompt at the rollout temperature; score each with the reward
   function; measure the policy's (old) and the reference's log-probs at that temperature, and the
   value model's value of each response token;
2. per-token rewards: `-kl_coef * (logp - ref_logp)` (the k1 KL estimator) on every response token,
   plus the score on the last one; optionally whitened; GAE (gamma, lambda) gives advantages and
   returns; advantages are whitened over the batch's response tokens;
3. `num_ppo_epochs` passes over the batch in `num_mini_batches` shuffled mini-batches, each one optimizer
   step on the clipped policy loss plus `vf_coef` x the clipped value loss (micro-batches of
   `per_device_batch_size` accumulate into it); the learning-rate schedule advances once per PPO step.

Where we differ from TRL 1.12, and why:
- responses stop at EOS (TRL's `stop_token="eos"`; its default, no stop token, scores text past EOS);
- the score lands on the last response token (EOS included) and values and losses cover the response
  tokens exactly; TRL, when it truncates at a stop token, puts the score one token past EOS and
  trains the value of that padding position too (its `padding_mask_p1`);
- old log-probs are recomputed by a forward pass (not taken from generation's logits), so old, new and
  reference log-probs are measured one way; dropout is off in the policy and value model, as in TRL;
- prompts cycle through a seeded shuffle per epoch, a batch may span two epochs (no `drop_last`), and
  the sampling seed and mini-batch order derive from (seed, step): a resumed run repeats nothing and
  continues the exact sequence;
- one AdamW-family optimizer over the policy's and the value model's trainable parameters, as TRL's
  single optimizer over its policy-and-value wrapper; with LoRA the value model gets its own adapter
  (score head trained in full) instead of being trained in full, so a LoRA run stays small;
- one process (no DeepSpeed/FSDP); the value model starts from the reward model when their tokenizers
  agree (TRL's recipe), else from the policy with a fresh head.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.training.arguments import TrainingArgs
from pipelines.training.examples import Messages
from pipelines.training.models import apply_lora, disable_dropout, load_model, parameter_counts
from pipelines.training.result import TrainingResult
from pipelines.training.rl.config import PPOSettings, RLConfig
from pipelines.training.rl.held_out import HeldOutEvaluator
from pipelines.training.rl.sampling import Sample, response_log_probs, sample_responses, token_log_probs
from pipelines.training.runtime import Runtime
from pipelines.training.saving import save_final
from pipelines.training.trainer import CHECKPOINTS_DIR, keep_newest_checkpoints, latest_checkpoint

POLICY_DIR = "policy"
VALUE_DIR = "value"
STATE_FILE = "ppo_state.pt"


@dataclass
class Rollout:
    """One PPO step's batch: the samples and, per response token (rows padded to the longest), what the
    update needs. `mask` marks real response tokens; every other tensor is 0 outside it."""

    samples: list[Sample]
    mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    kl: torch.Tensor
    non_score_reward: torch.Tensor
    scores: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


@dataclass
class PPOModels:
    """What PPO trains, and how: the policy, the value model, their optimizer and learning-rate schedule."""

    policy: Any
    value_model: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    value_source: Path
    """Where the value model's weights came from: the reward model's directory or the policy's."""

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for model in (self.policy, self.value_model) for p in model.parameters() if p.requires_grad]


def train_ppo(
    config: RLConfig,
    *,
    policy_dir: Path,
    reward_model_dir: Path,
    reference: Any | None,
    tokenizer: Any,
    train_prompts: list[Messages],
    train_prompt_ids: list[list[int]],
    reward: Any | None,
    evaluator: HeldOutEvaluator,
    store: RunStore,
    runtime: Runtime,
    progress: Progress,
) -> TrainingResult:
    """Train the policy at `policy_dir` with PPO for `training.max_steps` steps; resumes from the newest checkpoint.

    `reward` is anything with `.score(prompts, texts, ended) -> list[float]` (the missing-EOS penalty is its
    business). The held-out evaluation runs at step 0 (a fresh run), every `eval_steps` and at the end.
    With LoRA, `reference` and `reward` come as None and are read from the models being trained, their
    adapters switched off (`shared_frozen_models`); the evaluator is handed the same ones.
    """
    args = config.training
    _check_settings(config, train_prompt_ids)
    checkpoints_dir = store.path(CHECKPOINTS_DIR)
    resume_from = latest_checkpoint(checkpoints_dir)
    models = load_models(config, policy_dir, reward_model_dir, tokenizer, runtime, progress, resume_from)
    if reference is None or reward is None:
        reference, reward = shared_frozen_models(config, models, reference, reward, reward_model_dir, runtime, progress)
        evaluator.reference, evaluator.reward = reference, reward
    state = restore_state(models, resume_from) if resume_from is not None else {}
    start_step = int(state.get("step", 0))
    last_metrics: dict[str, Any] = state.get("last_metrics", {})
    window: dict[str, list[float]] = defaultdict(list, state.get("window", {}))
    if resume_from is not None:
        progress.log(f"resuming PPO from {resume_from} (step {start_step})")
    progress.stage("train", total=args.max_steps, done=start_step)
    held_out: dict[str, Any] = {}
    if start_step == 0:
        held_out = evaluator.evaluate(models.policy, 0) or held_out
    last_evaluated = 0 if start_step == 0 else -1
    pad_token_id = _pad_token_id(tokenizer)

    for step in range(start_step + 1, args.max_steps + 1):
        try:
            progress.check_cancelled()
        except RunCancelled as error:
            saved = _save_on_cancel(checkpoints_dir, step - 1, models, args, last_metrics, window)
            raise RunCancelled(
                f"{error}; stopped after step {step - 1}, checkpoint saved at {saved}; "
                "run again with the same run directory to resume from it"
            ) from error
        indices = step_prompt_indices(step, config.prompts_per_step, len(train_prompt_ids), args.seed)
        with _autocast(runtime):
            rollout = collect_rollout(
                models,
                reference,
                tokenizer,
                reward,
                [train_prompts[i] for i in indices],
                [train_prompt_ids[i] for i in indices],
                config,
                seed=args.seed * 1_000_003 + step,
            )
            update = ppo_update(models, rollout, config, pad_token_id, step)
        learning_rate = models.scheduler.get_last_lr()[0]
        models.scheduler.step()
        for name, value in {**rollout_metrics(rollout, config), **update}.items():
            window[name].append(value)
        if step % args.logging_steps == 0 or step in (1, args.max_steps):
            last_metrics = {name: sum(values) / len(values) for name, values in window.items()}
            last_metrics.update({"lr": learning_rate, "episode": step * config.prompts_per_step})
            progress.metrics({"step": step, **last_metrics})
            window.clear()
        progress.advance(1)
        if step % args.save_steps == 0 or step == args.max_steps:
            save_checkpoint(checkpoints_dir, step, models, args, last_metrics, window)
        if step % config.eval_steps == 0:
            held_out = evaluator.evaluate(models.policy, step) or held_out
            last_evaluated = step

    if last_evaluated != args.max_steps:
        held_out = evaluator.evaluate(models.policy, args.max_steps) or held_out
    metrics = {**last_metrics, **{f"held_out/{key}": value for key, value in held_out.items() if key != "step"}}
    return save_final(
        trainer=_PolicySaver(models.policy),  # type: ignore[arg-type]
        tokenizer=tokenizer,
        store=store,
        args=args,
        base_dir=policy_dir,
        merge=True,
        metrics=metrics,
        steps=args.max_steps,
        counts=parameter_counts(models.policy),
        progress=progress,
    )


def _check_settings(config: RLConfig, train_prompt_ids: list[list[int]]) -> None:
    if not train_prompt_ids:
        raise InvalidConfigError("PPO has no training prompts: the prompts file is empty or every prompt was held out")
    if config.prompts_per_step % config.ppo.num_mini_batches:
        raise InvalidConfigError(
            f"ppo.num_mini_batches ({config.ppo.num_mini_batches}) must divide the prompts per step "
            f"(per_device_batch_size x gradient_accumulation_steps = {config.prompts_per_step})",
            field="num_mini_batches",
        )
    if config.training.deepspeed_config:
        raise InvalidConfigError(
            "PPO runs in one process on one device: clear deepspeed_config", field="deepspeed_config"
        )


# --- the prompts of a step ---------------------------------------------------------------------------


def step_prompt_indices(step: int, batch_size: int, prompt_count: int, seed: int) -> list[int]:
    """The prompts of PPO step `step` (from 1): the next `batch_size` of an endless sequence of shuffles,
    one per epoch, each seeded by (seed, epoch), so any step's prompts follow from its number alone."""
    orders: dict[int, list[int]] = {}
    indices = []
    for position in range((step - 1) * batch_size, step * batch_size):
        epoch, offset = divmod(position, prompt_count)
        if epoch not in orders:
            orders[epoch] = list(range(prompt_count))
            random.Random(f"{seed}-{epoch}").shuffle(orders[epoch])
        indices.append(orders[epoch][offset])
    return indices


# --- models, optimizer, schedule ---------------------------------------------------------------------


def load_models(
    config: RLConfig,
    policy_dir: Path,
    reward_model_dir: Path,
    tokenizer: Any,
    runtime: Runtime,
    progress: Progress,
    checkpoint: Path | None,
) -> PPOModels:
    """The policy and the value model (from `checkpoint` when resuming), dropout off, with their optimizer."""
    args = config.training
    value_source, why = value_model_source(Path(policy_dir), Path(reward_model_dir), tokenizer)
    progress.log(f"value model initialised from {value_source} ({why})")
    policy = _load_trainable(Path(policy_dir), args, runtime, checkpoint, POLICY_DIR, reward_head=False)
    torch.manual_seed(args.seed)  # a fresh value head's initial weights
    value_model = _load_trainable(value_source, args, runtime, checkpoint, VALUE_DIR, reward_head=True)
    for model in (policy, value_model):
        disable_dropout(model)
        if args.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    parameters = [p for model in (policy, value_model) for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(args, parameters)
    from transformers import get_scheduler

    scheduler = get_scheduler(
        args.lr_scheduler,
        optimizer,
        num_warmup_steps=math.ceil(args.warmup_ratio * args.max_steps),
        num_training_steps=args.max_steps,
    )
    return PPOModels(
        policy=policy, value_model=value_model, optimizer=optimizer, scheduler=scheduler, value_source=value_source
    )


def shared_frozen_models(
    config: RLConfig,
    models: PPOModels,
    reference: Any | None,
    reward: Any | None,
    reward_model_dir: Path,
    runtime: Runtime,
    progress: Progress,
) -> tuple[Any, Any]:
    """(reference, reward) for a LoRA run, without loading either again: the reference is the policy with its
    adapter off; the reward model is the value model with its adapter off when the value model was loaded from
    it, else it is loaded (`pipelines/training/rl/shared_weights.py` says why this is exact)."""
    from pipelines.training.rl.run import load_reward_function
    from pipelines.training.rl.shared_weights import AdapterOff

    if config.training.adapter != "lora":
        raise InvalidConfigError("only a LoRA run reads its reference and reward model from its own adapters")
    if reference is None:
        reference = AdapterOff(models.policy)
        progress.log("reference: the policy's own weights with its LoRA adapter off (no second copy)")
    if reward is None:
        shared = AdapterOff(models.value_model) if models.value_source == Path(reward_model_dir) else None
        reward = load_reward_function(config, Path(reward_model_dir), runtime.device, progress, model=shared)
        if shared is not None:
            progress.log("reward model: the value model's own weights with its LoRA adapter off (no second copy)")
    return reference, reward


def value_model_source(policy_dir: Path, reward_model_dir: Path, tokenizer: Any) -> tuple[Path, str]:
    """Where the value model starts, and why: the reward model (TRL's recipe: it already reads responses
    for quality) when it reads the policy's tokens, else the policy itself with a fresh scalar head."""
    from transformers import AutoTokenizer

    if reward_model_dir == policy_dir:
        return policy_dir, "the reward model directory is the policy's"
    if not (reward_model_dir / "config.json").is_file():
        return policy_dir, f"{reward_model_dir} holds no full model; fresh value head on the policy"
    try:
        reward_tokenizer = AutoTokenizer.from_pretrained(reward_model_dir)
    except (OSError, ValueError):
        return policy_dir, f"{reward_model_dir} has no tokenizer to compare; fresh value head on the policy"
    special_ids = [i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None]
    same_tokens = len(reward_tokenizer) == len(tokenizer) and all(
        reward_tokenizer.convert_tokens_to_ids(tokenizer.convert_ids_to_tokens(i)) == i for i in special_ids
    )
    if same_tokens:
        return reward_model_dir, "the reward model shares the policy's vocabulary"
    return policy_dir, "the reward model's vocabulary differs from the policy's; fresh value head on the policy"


def _load_trainable(
    source: Path, args: TrainingArgs, runtime: Runtime, checkpoint: Path | None, part: str, *, reward_head: bool
) -> Any:
    """A full model from the checkpoint (when resuming) or `source`; a LoRA adapter on `source`, its weights
    from the checkpoint when resuming."""
    if args.adapter == "lora":
        model = apply_lora(
            load_model(source, args, runtime, reward_head=reward_head),
            args,
            task_type="SEQ_CLS" if reward_head else "CAUSAL_LM",
        )
        if checkpoint is not None:
            from peft import load_peft_weights, set_peft_model_state_dict

            set_peft_model_state_dict(model, load_peft_weights(str(checkpoint / part), device="cpu"))
    else:
        model = load_model(
            checkpoint / part if checkpoint is not None else source, args, runtime, reward_head=reward_head
        )
    return model if args.qlora else model.to(runtime.device)


def _optimizer(args: TrainingArgs, parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if args.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            parameters,
            lr=args.learning_rate,
            weight_decay=args.weight_decay,
            scale_parameter=False,
            relative_step=False,
        )
    optimizer_class = {"adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}[
        args.optimizer
    ]
    return optimizer_class(parameters, lr=args.learning_rate, weight_decay=args.weight_decay)


def _pad_token_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _autocast(runtime: Runtime) -> Any:
    """Mixed precision over float32 master weights, as the Trainer's bf16/fp16 flags do."""
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(runtime.dtype)
    return torch.autocast(device_type=runtime.device, dtype=dtype) if dtype else contextlib.nullcontext()


# --- rollout -----------------------------------------------------------------------------------------


def collect_rollout(
    models: PPOModels,
    reference: Any,
    tokenizer: Any,
    reward: Any,
    prompts: list[Messages],
    prompt_ids: list[list[int]],
    config: RLConfig,
    *,
    seed: int,
) -> Rollout:
    """Sample, score and measure one batch, then turn scores and KL into advantages (TRL 1.12 `train`, steps 1-6)."""
    batch_size = config.training.per_device_batch_size
    pad_token_id = _pad_token_id(tokenizer)
    samples = sample_responses(
        models.policy,
        tokenizer,
        prompt_ids,
        max_new_tokens=config.max_new_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        batch_size=batch_size,
        seed=seed,
    )
    device = next(models.policy.parameters()).device
    scores = torch.tensor(
        reward.score(prompts, [s.text for s in samples], [s.ended for s in samples]), dtype=torch.float32, device=device
    )
    width = max(len(s.response_ids) for s in samples)
    lengths = torch.tensor([len(s.response_ids) for s in samples], device=device)
    mask = torch.arange(width, device=device).unsqueeze(0) < lengths.unsqueeze(1)
    measure = {"temperature": config.temperature, "batch_size": batch_size, "pad_token_id": pad_token_id}
    logprobs = _padded(response_log_probs(models.policy, samples, **measure), width).to(device)
    ref_logprobs = _padded(response_log_probs(reference, samples, **measure), width).to(device)
    with torch.inference_mode():
        models.value_model.eval()
        values = _padded(
            [
                row
                for start in range(0, len(samples), batch_size)
                for row in token_values(models.value_model, samples[start : start + batch_size], pad_token_id, device)
            ],
            width,
        )
    # Clones leave inference mode: these tensors meet gradients in the update.
    logprobs, ref_logprobs, values = logprobs.clone(), ref_logprobs.clone(), values.clone()

    kl = (logprobs - ref_logprobs) * mask
    non_score_reward = -config.kl_coef * kl
    rewards = non_score_reward.clone()
    rewards[torch.arange(len(samples), device=device), lengths - 1] += scores
    if config.ppo.whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False) * mask
    advantages = generalized_advantages(rewards, values, config.ppo.gamma, config.ppo.lam)
    returns = advantages + values
    advantages = masked_whiten(advantages, mask) * mask
    return Rollout(
        samples=samples,
        mask=mask,
        logprobs=logprobs,
        values=values,
        kl=kl,
        non_score_reward=non_score_reward,
        scores=scores,
        advantages=advantages,
        returns=returns,
    )


def token_values(value_model: Any, batch: list[Sample], pad_token_id: int, device: Any) -> list[torch.Tensor]:
    """The value model's estimate at each response token's position (the state before the token is chosen),
    aligned as `sampling.token_log_probs` aligns log-probs; differentiable when grad is on.

    Like TRL's `get_reward`, it runs the backbone and the scalar head on every position, not the
    sequence-classification forward (which keeps the last position only).
    """
    base = value_model.get_base_model() if hasattr(value_model, "get_base_model") else value_model
    backbone = getattr(base, base.base_model_prefix)
    sequences = [sample.prompt_ids + sample.response_ids for sample in batch]
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.tensor([s + [pad_token_id] * (width - len(s)) for s in sequences], device=device)
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
    hidden = backbone(input_ids=input_ids, attention_mask=attention).last_hidden_state
    values = base.score(hidden).squeeze(-1).float()
    rows = []
    for row, sample in enumerate(batch):
        start = len(sample.prompt_ids) - 1
        rows.append(values[row, start : start + len(sample.response_ids)])
    return rows


def generalized_advantages(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """GAE over response tokens; past a response's end rewards and values are 0, so nothing leaks back."""
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_values = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_values - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True) -> torch.Tensor:
    """Zero mean (unless not `shift_mean`), unit variance over the masked entries (TRL's, unbiased variance)."""
    mean = masked_mean(values, mask)
    count = mask.sum()
    variance = masked_mean((values - mean) ** 2, mask) * count / (count - 1).clamp(min=1)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    return whitened if shift_mean else whitened + mean


def _padded(rows: list[torch.Tensor], width: int) -> torch.Tensor:
    return torch.stack([torch.nn.functional.pad(row.float(), (0, width - row.shape[0])) for row in rows])


# --- update ------------------------------------------------------------------------------------------


def ppo_update(models: PPOModels, rollout: Rollout, config: RLConfig, pad_token_id: int, step: int) -> dict[str, float]:
    """`num_ppo_epochs` passes over the rollout in shuffled mini-batches, one optimizer step each; the
    figures TRL logs (`policy/approxkl_avg` ...), averaged over every micro-batch."""
    settings, args = config.ppo, config.training
    size = len(rollout.samples)
    mini_batch_size = size // settings.num_mini_batches
    generator = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    figures: dict[str, list[float]] = defaultdict(list)
    models.policy.train()
    models.value_model.train()
    for _epoch in range(settings.num_ppo_epochs):
        order = torch.randperm(size, generator=generator).tolist()
        for start in range(0, size, mini_batch_size):
            mini_batch = order[start : start + mini_batch_size]
            models.optimizer.zero_grad()
            for micro_start in range(0, len(mini_batch), args.per_device_batch_size):
                micro_batch = mini_batch[micro_start : micro_start + args.per_device_batch_size]
                loss, micro_figures = ppo_loss(models, rollout, micro_batch, settings, config.temperature, pad_token_id)
                (loss * len(micro_batch) / len(mini_batch)).backward()
                for name, value in micro_figures.items():
                    figures[name].append(value)
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(models.trainable_parameters(), args.max_grad_norm)
            models.optimizer.step()
    models.optimizer.zero_grad()
    return {name: sum(values) / len(values) for name, values in figures.items()}


def ppo_loss(
    models: PPOModels,
    rollout: Rollout,
    indices: list[int],
    settings: PPOSettings,
    temperature: float,
    pad_token_id: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped policy loss plus `vf_coef` x the clipped value loss on one micro-batch (TRL 1.12's loss)."""
    device = rollout.mask.device
    batch = [rollout.samples[i] for i in indices]
    index = torch.tensor(indices, device=device)
    mask, width = rollout.mask[index], rollout.mask.shape[1]
    advantages, returns, old_values = rollout.advantages[index], rollout.returns[index], rollout.values[index]

    new_logprobs = _padded(
        token_log_probs(models.policy, batch, temperature=temperature, pad_token_id=pad_token_id, device=device), width
    )
    values = _padded(token_values(models.value_model, batch, pad_token_id, device), width)

    clipped_values = torch.clamp(values, old_values - settings.cliprange_value, old_values + settings.cliprange_value)
    value_losses = (values - returns) ** 2
    clipped_value_losses = (clipped_values - returns) ** 2
    value_loss = 0.5 * masked_mean(torch.max(value_losses, clipped_value_losses), mask)

    log_ratio = (new_logprobs - rollout.logprobs[index]) * mask
    ratio = torch.exp(log_ratio)
    policy_losses = -advantages * ratio
    clipped_policy_losses = -advantages * torch.clamp(ratio, 1.0 - settings.cliprange, 1.0 + settings.cliprange)
    policy_loss = masked_mean(torch.max(policy_losses, clipped_policy_losses), mask)

    loss = policy_loss + settings.vf_coef * value_loss
    with torch.no_grad():
        figures = {
            "policy/approxkl_avg": 0.5 * masked_mean(log_ratio**2, mask),
            "policy/clipfrac_avg": masked_mean((clipped_policy_losses > policy_losses).float(), mask),
            "loss/policy_avg": policy_loss,
            "loss/value_avg": value_loss,
            "val/clipfrac_avg": masked_mean((clipped_value_losses > value_losses).float(), mask),
            "val/ratio": masked_mean(ratio, mask),
        }
    return loss, {name: value.detach().item() for name, value in figures.items()}


def rollout_metrics(rollout: Rollout, config: RLConfig) -> dict[str, float]:
    """TRL's `objective/*` figures of a rollout (sums over a response's tokens, averaged over responses)."""
    non_score = rollout.non_score_reward.sum(1).mean()
    return {
        "objective/kl": float(rollout.kl.sum(1).mean()),
        "objective/entropy": float((-rollout.logprobs * rollout.mask).sum(1).mean()),
        "objective/non_score_reward": float(non_score),
        "objective/rlhf_reward": float(non_score + rollout.scores.mean()),
        "objective/scores": float(rollout.scores.mean()),
        "val/num_eos_tokens": float(sum(sample.ended for sample in rollout.samples)),
        "completions/mean_length": float(rollout.mask.sum(1).float().mean()),
    }


# --- checkpoints -------------------------------------------------------------------------------------


def save_checkpoint(
    checkpoints_dir: Path,
    step: int,
    models: PPOModels,
    args: TrainingArgs,
    last_metrics: dict[str, Any],
    window: dict[str, list[float]],
) -> Path:
    """`checkpoint-<step>`, written beside its final name and renamed (a kill mid-save leaves no half
    checkpoint for resume to trip on), then the oldest beyond `save_total_limit` deleted."""
    name = f"checkpoint-{step}"
    staging, target = checkpoints_dir / f".staging-{name}", checkpoints_dir / name
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    models.policy.save_pretrained(str(staging / POLICY_DIR))
    models.value_model.save_pretrained(str(staging / VALUE_DIR))
    state = {
        "step": step,
        "optimizer": models.optimizer.state_dict(),
        "scheduler": models.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python_rng": random.getstate(),
        "last_metrics": last_metrics,
        "window": dict(window),
    }
    torch.save(state, staging / STATE_FILE)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    keep_newest_checkpoints(checkpoints_dir, args.save_total_limit)
    return target


def restore_state(models: PPOModels, checkpoint: Path) -> dict[str, Any]:
    """Optimizer, schedule and RNG states back from `checkpoint`; returns the rest (step, metrics)."""
    state = torch.load(checkpoint / STATE_FILE, weights_only=False)  # our own file: RNG states are not tensors only
    models.optimizer.load_state_dict(state["optimizer"])
    models.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    random.setstate(state["python_rng"])
    return state


def _save_on_cancel(
    checkpoints_dir: Path,
    step: int,
    models: PPOModels,
    args: TrainingArgs,
    last_metrics: dict[str, Any],
    window: dict[str, list[float]],
) -> Path | None:
    """The checkpoint of the last finished step (saved now unless it already is); None before any step."""
    if step > 0 and not (checkpoints_dir / f"checkpoint-{step}").is_dir():
        return save_checkpoint(checkpoints_dir, step, models, args, last_metrics, window)
    return latest_checkpoint(checkpoints_dir)


class _PolicySaver:
    """What `save_final` asks of a Trainer, for one process: save the policy (a LoRA policy saves its
    adapter), with no other rank to wait for."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.args = SimpleNamespace(should_save=True)
        self.accelerator = SimpleNamespace(wait_for_everyone=lambda: None)

    def save_model(self, output_dir: str) -> None:
        self.policy.save_pretrained(output_dir)

"""Pairwise preference training against a frozen reference: DPO (sigmoid), SPIN, IPO and hinge.

The reference model's log-probabilities are computed once per dataset, in one pass before training,
cached in the run store and reused on resume; no reference forward runs during training. Each step
is one forward+backward of the policy over the chosen and rejected sequences concatenated into one
batch, with logits computed only from the first reply position on.
"""

from __future__ import annotations

import gc
import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training.batching import collate_pairs
from pipelines.training.config import PreferenceConfig, RewardConfig
from pipelines.training.encoding import IGNORE_INDEX, encode_preference_with_report
from pipelines.training.examples import load_preference_pairs, split_held_out
from pipelines.training.length_limits import LengthReport
from pipelines.training.models import apply_lora, disable_dropout, load_model, load_tokenizer
from pipelines.training.result import TrainingResult
from pipelines.training.runtime import resolve_runtime
from pipelines.training.saving import finished_result, write_training_config
from pipelines.training.trainer import CheckpointingTrainer, train_and_save

REFERENCE_LOGPS_FILE = "reference_logps.json"


def dataset_fingerprint(*parts: Any) -> str:
    """A short hash of the inputs that determine the cached reference log-probs (a changed dataset recomputes them)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path) and part.is_file():
            digest.update(part.read_bytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def preference_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    loss_type: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The pairwise loss (mean over the batch) and each pair's implicit rewards beta * log(policy/reference).

    With h = log(p(y_c|x)/p_ref(y_c|x)) - log(p(y_r|x)/p_ref(y_r|x)):
      sigmoid (DPO) and spin:  log(1 + exp(-beta * h))   -- SPIN: chosen = real, rejected = generated,
                                                             reference = p_t, the model that generated them
      ipo:                     (h - 1 / (2 * beta))^2    -- IPO eq. 17, beta is tau
      hinge (SLiC):            max(0, 1 - beta * h)
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    if loss_type in ("sigmoid", "spin"):
        losses = -F.logsigmoid(beta * h)
    elif loss_type == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * h)
    else:
        raise InvalidConfigError(f"loss must be one of sigmoid, spin, ipo, hinge; got {loss_type!r}")
    return losses.mean(), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def sequence_logps(model: Any, batch: dict[str, Any], *, average: bool = False) -> torch.Tensor:
    """Sum (or per-token mean) of the log-probabilities of each row's reply tokens: one value per row.

    Logits are computed only from `completion_start - 1` on: the prompt's positions would cost a
    vocabulary-sized projection each and carry no loss.
    """
    start = int(batch["completion_start"])
    length = batch["input_ids"].shape[1]
    outputs = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        logits_to_keep=length - start + 1,
        use_cache=False,
    )
    logits = outputs.logits[:, :-1].float()  # position t predicts token t + 1
    labels = batch["labels"][:, start:]
    token_logps = -F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    mask = labels != IGNORE_INDEX
    total = (token_logps * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1) if average else total


def compute_reference_logps(
    model: Any,
    features: list[dict[str, Any]],
    *,
    batch_size: int,
    pad_token_id: int,
    average: bool,
    progress: Progress | None = None,
) -> tuple[list[float], list[float]]:
    """(chosen, rejected) log-probs of every pair under the frozen reference, in `features` order.

    Pairs are batched by length so little compute goes to padding.
    """
    order = sorted(
        range(len(features)),
        key=lambda i: (
            len(features[i]["prompt_ids"]) + max(len(features[i]["chosen_ids"]), len(features[i]["rejected_ids"]))
        ),
    )
    chosen: list[float] = [0.0] * len(features)
    rejected: list[float] = [0.0] * len(features)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            batch = collate_pairs([features[i] for i in positions], pad_token_id)
            batch = {key: value.to(device) for key, value in batch.items()}
            logps = sequence_logps(model, batch, average=average).double().cpu()
            chosen_logps, rejected_logps = logps.chunk(2)
            for offset, position in enumerate(positions):
                chosen[position] = chosen_logps[offset].item()
                rejected[position] = rejected_logps[offset].item()
            if progress is not None:
                progress.advance(len(positions))
    model.train(was_training)
    return chosen, rejected


class PreferenceTrainer(CheckpointingTrainer):
    """A transformers Trainer whose loss is `preference_loss` on cached reference log-probs."""

    def __init__(self, *args: Any, beta: float, loss_type: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.beta = beta
        self.loss_type = loss_type
        # Our loss is already a mean over pairs: let the Trainer divide by accumulation steps.
        self.model_accepts_loss_kwargs = False

    def _pair_outputs(self, model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logps = sequence_logps(model, inputs, average=self.loss_type == "ipo")
        policy_chosen, policy_rejected = logps.chunk(2)
        return preference_loss(
            policy_chosen,
            policy_rejected,
            inputs["ref_chosen_logps"].to(logps.dtype),
            inputs["ref_rejected_logps"].to(logps.dtype),
            self.beta,
            self.loss_type,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        loss, chosen_rewards, rejected_rewards = self._pair_outputs(model, inputs)
        if model.training:
            self.record_batch_metrics(_reward_metrics(chosen_rewards, rejected_rewards))
        return (loss, {"chosen_rewards": chosen_rewards}) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):  # type: ignore[no-untyped-def]
        """Implicit-reward accuracy and margins on the held-out pairs."""
        batches = self.scored_held_out(eval_dataset, self._pair_outputs)
        if not batches:
            return {}
        chosen = torch.cat([chosen_rewards for _loss, chosen_rewards, _rejected in batches])
        rejected = torch.cat([rejected_rewards for _loss, _chosen, rejected_rewards in batches])
        metrics = {f"{metric_key_prefix}/{name}": value for name, value in _reward_metrics(chosen, rejected).items()}
        # Each batch's loss is its pairs' mean: weighted by its pair count, the mean over every pair.
        total_loss = sum(loss.item() * len(chosen_rewards) for loss, chosen_rewards, _rejected in batches)
        metrics[f"{metric_key_prefix}/loss"] = total_loss / len(chosen)
        self.log(dict(metrics))
        return metrics


def _reward_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict[str, float]:
    return {
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
    }


def reference_logps_for(
    *,
    store: RunStore,
    config: PreferenceConfig,
    features: list[dict[str, Any]],
    policy_model: Any,
    model_dir: Path,
    ref_model_dir: Path,
    dataset_path: Path,
    pad_token_id: int,
    progress: Progress,
) -> tuple[list[float], list[float]]:
    """The reference log-probs of every pair: from the store when this dataset's were computed before.

    When the reference is the starting policy (SPIN's p_t, DPO's SFT model), the already loaded policy
    computes them before training changes it; otherwise the reference is loaded, used once and freed.
    """
    args = config.training
    average = config.loss == "ipo"
    fingerprint = dataset_fingerprint(
        dataset_path,
        _model_identity(ref_model_dir),
        {
            "max_length": args.max_length,
            "max_prompt_length": args.max_prompt_length,
            "average": average,
            "over_length": args.over_length,
            "prompt_format": args.prompt_format,
        },
    )
    if store.exists(REFERENCE_LOGPS_FILE):
        cached = store.read_json(REFERENCE_LOGPS_FILE)
        if cached.get("fingerprint") == fingerprint and len(cached["chosen"]) == len(features):
            progress.log(f"reference log-probs of {len(features)} pairs reused from {store.path(REFERENCE_LOGPS_FILE)}")
            return cached["chosen"], cached["rejected"]
    progress.stage("reference", total=len(features))
    same_model = ref_model_dir.resolve() == model_dir.resolve()
    reference = policy_model
    if not same_model:
        from transformers import AutoModelForCausalLM

        reference = AutoModelForCausalLM.from_pretrained(ref_model_dir, dtype=torch.float32)
        reference.to(next(policy_model.parameters()).device)
    chosen, rejected = compute_reference_logps(
        reference,
        features,
        batch_size=config.reference_batch_size,
        pad_token_id=pad_token_id,
        average=average,
        progress=progress,
    )
    if not same_model:
        del reference
        gc.collect()
    store.write_json(
        {"fingerprint": fingerprint, "reference": str(ref_model_dir), "chosen": chosen, "rejected": rejected},
        REFERENCE_LOGPS_FILE,
    )
    return chosen, rejected


def _model_identity(model_dir: Path) -> dict[str, Any]:
    weights = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin"))
    return {
        "path": str(model_dir.resolve()),
        "weights": [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in weights],
    }


def encoded_pairs(
    kind: str,
    config: PreferenceConfig | RewardConfig,
    model_dir: str | Path,
    dataset_path: str | Path,
    store: RunStore,
    progress: Progress,
) -> tuple[Any, list[dict[str, Any]], LengthReport]:
    """The tokenizer, the pairs' token rows and their length report: how every pair trainer starts.

    On the way it records the run's training config (`kind`: "preference" or "reward") and logs the
    token lengths, so a run shows what was cut before it loads the model.
    """
    args = config.training
    pairs = load_preference_pairs(dataset_path)
    write_training_config(store, kind, config, model_dir, dataset_path)
    tokenizer = load_tokenizer(model_dir, args.prompt_format)
    features, lengths = encode_preference_with_report(tokenizer, pairs, **args.length_limits())
    progress.log(f"token lengths: {lengths.message()}")
    return tokenizer, features, lengths


def run_preference(
    config: PreferenceConfig,
    model_dir: str | Path,
    ref_model_dir: str | Path | None,
    dataset_path: str | Path,
    store: RunStore,
    progress: Progress,
) -> TrainingResult:
    """Train the policy at `model_dir` on (prompt, chosen, rejected) pairs against a frozen reference.

    `ref_model_dir` defaults to `model_dir` (DPO's SFT model; SPIN's p_t, which generated the
    rejected answers). A rerun with the same store resumes from the newest checkpoint, reusing the
    cached reference log-probs, or returns the finished result.
    """
    done = finished_result(store)
    if done is not None:
        return done
    args = config.training
    model_dir = Path(model_dir)
    ref_model_dir = Path(ref_model_dir) if ref_model_dir else model_dir
    dataset_path = Path(dataset_path)
    runtime = resolve_runtime(args)
    tokenizer, features, lengths = encoded_pairs("preference", config, model_dir, dataset_path, store, progress)
    model = load_model(model_dir, args, runtime)
    if runtime.device == "cuda" and not args.qlora:
        model.to("cuda")
    ref_chosen, ref_rejected = reference_logps_for(
        store=store,
        config=config,
        features=features,
        policy_model=model,
        model_dir=model_dir,
        ref_model_dir=ref_model_dir,
        dataset_path=dataset_path,
        pad_token_id=tokenizer.pad_token_id,
        progress=progress,
    )
    for feature, chosen_logp, rejected_logp in zip(features, ref_chosen, ref_rejected, strict=True):
        feature["ref_chosen_logps"] = chosen_logp
        feature["ref_rejected_logps"] = rejected_logp
    train_features, eval_features = split_held_out(features, config.eval_fraction, args.seed)
    progress.log(f"{len(train_features)} training pairs, {len(eval_features)} held out")

    if args.adapter == "lora":
        model = apply_lora(model, args)
    if config.disable_dropout:
        switched_off = disable_dropout(model)
        progress.log(f"policy dropout off in {switched_off} modules (as TRL's DPOTrainer)")
    return train_and_save(
        PreferenceTrainer,
        model=model,
        tokenizer=tokenizer,
        train_features=train_features,
        eval_features=eval_features,
        eval_steps=config.eval_steps,
        data_collator=partial(collate_pairs, pad_token_id=tokenizer.pad_token_id),
        store=store,
        args=args,
        runtime=runtime,
        base_dir=model_dir,
        merge=config.merge_adapter,
        progress=progress,
        lengths=lengths.summary(),
        beta=config.beta,
        loss_type=config.loss,
    )

"""Reward models: a scalar head on the LM trained with the Bradley-Terry loss, and a scorer for them.

The model is `AutoModelForSequenceClassification` with one label: the score of the last token of
"chat-formatted prompt + response" (or ALMoST's raw `prompt\n\nAssistant: response<eos>` for a base
model, `prompt_format` "raw_assistant"). Loss -log sigmoid(r_chosen - r_rejected); held-out pairwise
accuracy = share of held-out pairs with r_chosen > r_rejected. `RewardScorer` serves ALMoST's
RM-guided self-play (best-of-n) and reward filters.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.training.arguments import effective_batch_text
from pipelines.training.batching import collate_pairs, padded_batches
from pipelines.training.config import RewardConfig
from pipelines.training.examples import Messages, split_held_out
from pipelines.training.formatting import TRAINING_FORMAT_FILE, encode_prompt_completions
from pipelines.training.models import apply_lora, load_model
from pipelines.training.preference import encoded_pairs
from pipelines.training.result import TrainingResult
from pipelines.training.runtime import resolve_runtime
from pipelines.training.saving import finished_result
from pipelines.training.trainer import CheckpointingTrainer, train_and_save


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(r_chosen - r_rejected) over the pairs."""
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def _pair_rewards(model: Any, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    rewards = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits.squeeze(-1)
    return rewards.float().chunk(2)


class RewardTrainer(CheckpointingTrainer):
    """A transformers Trainer with the Bradley-Terry loss over [chosen; rejected] batches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        chosen, rejected = _pair_rewards(model, inputs)
        loss = bradley_terry_loss(chosen, rejected)
        if model.training:
            self.record_batch_metrics(_pair_metrics(chosen.detach(), rejected.detach()))
        return (loss, {"chosen": chosen, "rejected": rejected}) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):  # type: ignore[no-untyped-def]
        """Pairwise accuracy, mean margin and loss on the held-out pairs."""
        batches = self.scored_held_out(eval_dataset, _pair_rewards)
        if not batches:
            return {}
        chosen = torch.cat([batch_chosen for batch_chosen, _rejected in batches])
        rejected = torch.cat([batch_rejected for _chosen, batch_rejected in batches])
        metrics = {f"{metric_key_prefix}/{name}": value for name, value in _pair_metrics(chosen, rejected).items()}
        metrics[f"{metric_key_prefix}/loss"] = bradley_terry_loss(chosen, rejected).item()
        self.log(dict(metrics))
        return metrics


def _pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, float]:
    return {
        "accuracy": (chosen > rejected).float().mean().item(),
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/margins": (chosen - rejected).mean().item(),
    }


def run_reward(
    config: RewardConfig,
    model_dir: str | Path,
    dataset_path: str | Path,
    store: RunStore,
    progress: Progress,
) -> TrainingResult:
    """Train a reward model from `model_dir` on (prompt, chosen, rejected) comparisons.

    `eval_fraction` of the pairs is held out; `eval/accuracy` is reported at the start, every
    `eval_steps` and at the end. A rerun with the same store resumes, or returns the finished result.
    """
    from transformers import set_seed

    done = finished_result(store)
    if done is not None:
        return done
    args = config.training
    runtime = resolve_runtime(args)
    tokenizer, features, lengths = encoded_pairs("reward", config, model_dir, dataset_path, store, progress)
    train_features, eval_features = split_held_out(features, config.eval_fraction, args.seed)
    progress.log(
        f"{len(train_features)} training pairs, {len(eval_features)} held out; "
        f"effective batch {effective_batch_text(args)}"
    )

    set_seed(args.seed)  # the new score head's initial weights
    model = load_model(model_dir, args, runtime, reward_head=True)
    pad_id = scoring_pad_id(
        tokenizer,
        [f["prompt_ids"] + f["chosen_ids"] + f["rejected_ids"] for f in features],
        model.config.vocab_size,
    )
    model.config.pad_token_id = pad_id
    if args.adapter == "lora":
        model = apply_lora(model, args, task_type="SEQ_CLS")
    return train_and_save(
        RewardTrainer,
        model=model,
        tokenizer=tokenizer,
        train_features=train_features,
        eval_features=eval_features,
        eval_steps=config.eval_steps,
        data_collator=partial(collate_pairs, pad_token_id=pad_id),
        store=store,
        args=args,
        runtime=runtime,
        base_dir=model_dir,
        merge=config.merge_adapter,
        progress=progress,
        lengths=lengths.summary(),
    )


class RewardScorer:
    """Scores (prompt, response) pairs with a trained reward model; higher is better.

    `model_dir` is a full or merged reward model, or a LoRA reward adapter (its base is read from
    adapter_config.json and the adapter merged in memory).
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        batch_size: int = 8,
        max_length: int = 1024,
        prompt_format: str | None = None,
        model: Any | None = None,
    ):
        """`model`: the reward model already in memory (PPO's value model with its adapter off,
        `pipelines.training.rl.shared_weights`); its tokenizer and format are still read from `model_dir`."""
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.prompt_format = prompt_format or trained_prompt_format(model_dir, self.tokenizer)
        if model is None:
            model = _load_reward_model(model_dir, self.tokenizer).to(device).eval()
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def score(self, prompts: list[str | Messages], responses: list[str]) -> list[float]:
        """One reward per (prompt, response); prompts are text (one user turn) or chat messages."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        conversations = [[{"role": "user", "content": p}] if isinstance(p, str) else list(p) for p in prompts]
        encoded = encode_prompt_completions(
            self.tokenizer,
            conversations,
            list(responses),
            max_length=self.max_length,
            max_prompt_length=self.max_length // 2,
            prompt_format=self.prompt_format,
        )
        sequences = [prompt_ids + completion_ids for prompt_ids, completion_ids in encoded]
        pad = scoring_pad_id(self.tokenizer, sequences, self.model.config.vocab_size)
        self.model.config.pad_token_id = pad
        scores: list[float] = []
        with torch.inference_mode():
            for input_ids, attention_mask in padded_batches(sequences, self.batch_size, pad):
                logits = self.model(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
                ).logits
                scores.extend(logits.squeeze(-1).float().cpu().tolist())
        return scores


def _load_reward_model(model_dir: Path, tokenizer: Any) -> Any:
    """The reward model at `model_dir` in float32: a full model, or a LoRA adapter merged into its base."""
    from transformers import AutoModelForSequenceClassification

    adapter_config = model_dir / "adapter_config.json"
    if not adapter_config.is_file():
        return AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, dtype=torch.float32)
    from peft import PeftModel

    base_dir = json.loads(adapter_config.read_text())["base_model_name_or_path"]
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=torch.float32)
    base.config.pad_token_id = tokenizer.pad_token_id
    return PeftModel.from_pretrained(base, model_dir).merge_and_unload()


def trained_prompt_format(model_dir: Path, tokenizer: Any) -> str:
    """How the model at `model_dir` was trained to read examples: what training recorded beside it, else
    the chat template when the tokenizer has one, else ALMoST's raw format."""
    recorded = model_dir / TRAINING_FORMAT_FILE
    if recorded.is_file():
        return json.loads(recorded.read_text())["prompt_format"]
    return "chat_template" if tokenizer.chat_template is not None else "raw_assistant"


def scoring_pad_id(tokenizer: Any, sequences: list[list[int]], vocab_size: int) -> int:
    """The id to pad reward batches with: the tokenizer's pad, unless it is also its end-of-sequence token.

    The score is read at the last token that is not padding. Many tokenizers pad with EOS (SmolLM2, Llama
    without a pad token), so a reply ending in EOS (ALMoST's raw format) would be scored one token early;
    ALMoST adds a separate [PAD] token and scores the EOS. Padding with an id that none of `sequences` uses
    puts the score on the true last token; the attention mask hides the padding either way.
    """
    pad = tokenizer.pad_token_id
    if pad is not None and pad != tokenizer.eos_token_id:
        return pad
    used = {token for sequence in sequences for token in sequence}
    for candidate in (tokenizer.unk_token_id, *range(min(vocab_size, len(tokenizer)) - 1, -1, -1)):
        if candidate is not None and candidate not in used and candidate < vocab_size:
            return candidate
    raise InvalidInputError("every token id of the vocabulary occurs in the data; no id is left to pad with")

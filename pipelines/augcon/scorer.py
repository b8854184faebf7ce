"""AugCon's contrastive query scorer: the LM with LoRA (QLoRA on a GPU) and a scalar value head, sigmoid output.

The value head reads the last non-pad token of "Context: {context}\n\nQuestion: {query}\n\n"
(`AutoModelForSequenceClassification` with one label is exactly that: a linear head on the last
non-pad position). A batch holds B positives then B negatives; the loss is
mean(score(neg)) - mean(score(pos)) on the sigmoid scores, a linear margin and not Bradley-Terry,
as in the paper's `step2_scorer.py`, whose DeepSpeed WarmupLR warms up and then holds the rate
(AugConConfig's scorer default: constant_with_warmup). Training reuses the training layer's atomic checkpoints, so a
killed run resumes from its last checkpoint. Imports torch: workers only.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.batching import collate_pairs, padded_batches
from pipelines.training.models import apply_lora, load_model
from pipelines.training.result import TrainingResult
from pipelines.training.runtime import resolve_runtime
from pipelines.training.saving import FINAL_DIR, RESULT_FILE, finished_result
from pipelines.training.trainer import CheckpointingTrainer, train_and_save

SCORER_TEXT = "Context: {context}\n\nQuestion: {query}\n\n"


def scorer_text(context: str, query: str) -> str:
    return SCORER_TEXT.format(context=context, query=query)


def contrastive_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """mean(score(neg)) - mean(score(pos)): falls as positives score above negatives."""
    return negative_scores.mean() - positive_scores.mean()


def load_scorer_tokenizer(model_dir: str | Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode_texts(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids without special tokens; a long text keeps its end, where the question is."""
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [ids[-max_length:] for ids in encoded]


def _scores(model: Any, inputs: dict[str, Any]) -> torch.Tensor:
    logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    return torch.sigmoid(logits.squeeze(-1).float())


class ContrastiveScorerTrainer(CheckpointingTrainer):
    """A Trainer whose loss is AugCon's contrastive margin over [positives; negatives] batches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        positive, negative = _scores(model, inputs).chunk(2)
        loss = contrastive_loss(positive, negative)
        if model.training:
            self.record_batch_metrics(
                {
                    "scores/positive": positive.detach().mean().item(),
                    "scores/negative": negative.detach().mean().item(),
                    "accuracy": (positive.detach() > negative.detach()).float().mean().item(),
                }
            )
        return (loss, {"positive": positive, "negative": negative}) if return_outputs else loss


def pair_features(tokenizer: Any, pairs: list[dict[str, Any]], max_length: int) -> list[dict[str, Any]]:
    """Per pair: the positive's and the negative's tokens, in the training layer's pair layout."""
    positives = encode_texts(tokenizer, [scorer_text(p["context"], p["pos_query"]) for p in pairs], max_length)
    negatives = encode_texts(tokenizer, [scorer_text(p["context"], p["neg_query"]) for p in pairs], max_length)
    return [
        {"index": index, "prompt_ids": [], "chosen_ids": positive, "rejected_ids": negative}
        for index, (positive, negative) in enumerate(zip(positives, negatives, strict=True))
    ]


def count_texts_over(tokenizer: Any, pairs: list[dict[str, Any]], max_length: int) -> int:
    """How many scorer texts (a positive and a negative per pair) `encode_texts` cuts to `max_length`."""
    texts = [scorer_text(p["context"], p[key]) for p in pairs for key in ("pos_query", "neg_query")]
    return sum(len(ids) > max_length for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def train_scorer(
    args: TrainingArgs, model_dir: str | Path, pairs: list[dict[str, Any]], store: RunStore, progress: Progress
) -> TrainingResult:
    """Train the scorer on (context, pos_query, neg_query) pairs; a rerun resumes or returns the result."""
    from transformers import set_seed

    done = finished_result(store)
    if done is not None:
        return done
    if not pairs:
        raise InvalidInputError("the scorer needs at least one (context, pos_query, neg_query) pair")
    runtime = resolve_runtime(args)
    backbone, note = scorer_backbone(args, runtime.dtype)
    progress.log(f"scorer backbone: {note}; schedule {args.lr_scheduler}")
    tokenizer = load_scorer_tokenizer(model_dir)
    features = pair_features(tokenizer, pairs, args.max_length)
    texts_cut = count_texts_over(tokenizer, pairs, args.max_length)
    if texts_cut:
        progress.log(
            f"{texts_cut} of {2 * len(pairs)} scorer texts are over max_length {args.max_length} tokens and keep "
            "their end (the question); raise the scorer's max_length to keep them whole"
        )
    set_seed(args.seed)  # the value head's initial weights
    model = load_model(model_dir, args, runtime, reward_head=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    if args.adapter == "lora":
        model = apply_lora(model, args, task_type="SEQ_CLS")
    result = train_and_save(
        ContrastiveScorerTrainer,
        model=model,
        tokenizer=tokenizer,
        train_features=features,
        data_collator=partial(collate_pairs, pad_token_id=tokenizer.pad_token_id),
        store=store,
        args=args,
        runtime=runtime,
        base_dir=model_dir,
        merge=False,
        progress=progress,
    )
    # QueryScorer reads the backbone back, so a QLoRA adapter scores on the 4-bit base it was trained on.
    result = replace(
        result, metrics={**result.metrics, "backbone": backbone, "backbone_note": note, "texts_cut": texts_cut}
    )
    store.write_json(result.to_dict(), FINAL_DIR, RESULT_FILE)
    return result


def scorer_backbone(args: TrainingArgs, dtype: str) -> tuple[str, str]:
    """("qlora-nf4" | "lora-<dtype>" | "full-<dtype>", a sentence saying how that differs from the paper).

    The paper's scorer is QLoRA: a 4-bit NF4 base (double quantisation, bf16 compute) under LoRA. It needs a
    CUDA GPU with bitsandbytes (`qlora: true`); elsewhere the base stays in `dtype` under the same LoRA.
    """
    if args.adapter == "full":
        return f"full-{dtype}", f"every weight trained in {dtype} (the paper: QLoRA on a 4-bit NF4 base)"
    if args.qlora:
        return "qlora-nf4", "QLoRA, a 4-bit NF4 base under LoRA, as the paper"
    return (
        f"lora-{dtype}",
        f"LoRA over a {dtype} base (the paper: QLoRA on a 4-bit NF4 base, which needs a CUDA GPU with bitsandbytes: "
        "set scorer qlora to true there)",
    )


class QueryScorer:
    """Scores (context, query) pairs in (0, 1) with a trained scorer (LoRA adapter or full model)."""

    def __init__(
        self, base_dir: str | Path, result: TrainingResult, *, batch_size: int = 16, max_length: int = 512
    ) -> None:
        from transformers import AutoModelForSequenceClassification

        self.tokenizer = load_scorer_tokenizer(base_dir)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if result.adapter_dir and result.metrics.get("backbone") == "qlora-nf4":
            from peft import PeftModel
            from transformers import BitsAndBytesConfig

            # Scored on the 4-bit base it was trained on (merging into a dequantised base would shift scores).
            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
            base = AutoModelForSequenceClassification.from_pretrained(
                base_dir, num_labels=1, quantization_config=quantization
            )
            base.config.pad_token_id = self.tokenizer.pad_token_id
            model = PeftModel.from_pretrained(base, result.adapter_dir)
            model.config.pad_token_id = self.tokenizer.pad_token_id
            self.model = model.eval()
            self.device, self.batch_size, self.max_length = "cuda", batch_size, max_length
            return
        if result.adapter_dir:
            from peft import PeftModel

            base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=torch.float32)
            base.config.pad_token_id = self.tokenizer.pad_token_id
            model = PeftModel.from_pretrained(base, result.adapter_dir).merge_and_unload()
        else:
            model = AutoModelForSequenceClassification.from_pretrained(
                result.output_dir, num_labels=1, dtype=torch.float32
            )
        model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length

    def score(self, contexts: list[str], queries: list[str]) -> list[float]:
        texts = [scorer_text(context, query) for context, query in zip(contexts, queries, strict=True)]
        sequences = encode_texts(self.tokenizer, texts, self.max_length)
        scores: list[float] = []
        with torch.inference_mode():
            for input_ids, attention_mask in padded_batches(sequences, self.batch_size, self.tokenizer.pad_token_id):
                batch = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
                scores.extend(_scores(self.model, batch).cpu().tolist())
        return scores

    def close(self) -> None:
        self.model = None
        if self.device == "cuda":
            torch.cuda.empty_cache()

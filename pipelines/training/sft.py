"""Supervised fine-tuning: prompt -> completion examples, loss on completion tokens (or all tokens), full or LoRA."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.training.batching import collate_sft
from pipelines.training.config import SFTConfig
from pipelines.training.encoding import encode_sft_with_report, pack_sft
from pipelines.training.examples import load_sft_examples
from pipelines.training.models import apply_lora, load_model, load_tokenizer
from pipelines.training.result import TrainingResult
from pipelines.training.runtime import resolve_runtime
from pipelines.training.saving import finished_result, write_training_config
from pipelines.training.trainer import CheckpointingTrainer, train_and_save


def run_sft(
    config: SFTConfig,
    model_dir: str | Path,
    dataset_path: str | Path,
    store: RunStore,
    progress: Progress,
) -> TrainingResult:
    """Fine-tune `model_dir` on the SFT artifact at `dataset_path`; outputs and checkpoints go to `store`.

    A rerun with the same store resumes from the newest checkpoint, or returns the finished result.
    """
    done = finished_result(store)
    if done is not None:
        return done
    args = config.training
    runtime = resolve_runtime(args)
    examples = load_sft_examples(dataset_path, include_context=config.include_context)
    write_training_config(store, "sft", config, model_dir, dataset_path)

    progress.stage("tokenize", total=len(examples))
    tokenizer = load_tokenizer(model_dir, args.prompt_format)
    features, lengths = encode_sft_with_report(
        tokenizer,
        examples,
        **args.length_limits(),
        completion_only_loss=config.completion_only_loss,
    )
    progress.log(f"token lengths: {lengths.message()}")
    if not features:
        raise InvalidInputError(f"no example is left to train on: {lengths.message()}")
    if config.packing:
        features = pack_sft(features, max_length=args.max_length)
    progress.advance(len(examples))
    progress.log(f"{len(examples)} examples -> {len(features)} training rows")

    model = load_model(model_dir, args, runtime)
    if args.adapter == "lora":
        model = apply_lora(model, args)
    return train_and_save(
        CheckpointingTrainer,
        model=model,
        tokenizer=tokenizer,
        train_features=features,
        data_collator=partial(collate_sft, pad_token_id=tokenizer.pad_token_id),
        store=store,
        args=args,
        runtime=runtime,
        base_dir=model_dir,
        merge=config.merge_adapter,
        progress=progress,
        lengths=lengths.summary(),
    )

"""Merge a LoRA adapter into its base model and save a plain model directory (weights + tokenizer)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from pipelines.errors import InvalidInputError
from pipelines.training.formatting import TRAINING_FORMAT_FILE


def merge_lora(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Load `base_dir`, apply the adapter in `adapter_dir`, fold it into the weights, save to `out_dir`.

    A reward adapter (task SEQ_CLS) is merged into a sequence-classification model with one label.
    The output folder appears atomically (written beside it, then renamed).
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    adapter_config_path = adapter_dir / "adapter_config.json"
    if not adapter_config_path.is_file():
        raise InvalidInputError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json is missing)")
    task_type = json.loads(adapter_config_path.read_text()).get("task_type")
    if task_type == "SEQ_CLS":
        base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, dtype=torch.float32)
    else:
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base_dir
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if task_type == "SEQ_CLS" and base.config.pad_token_id is None:
        base.config.pad_token_id = tokenizer.pad_token_id
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()

    staging = out_dir.with_name(f".staging-{out_dir.name}")
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if (adapter_dir / TRAINING_FORMAT_FILE).is_file():
        shutil.copyfile(adapter_dir / TRAINING_FORMAT_FILE, staging / TRAINING_FORMAT_FILE)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return out_dir

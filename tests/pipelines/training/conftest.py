"""Small datasets and settings shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.training.arguments import TrainingArgs

QUESTIONS = [
    ("What is 2 + 2?", "2 + 2 is 4.", "2 + 2 is 7."),
    ("What is the capital of France?", "Paris is the capital of France.", "The capital of France is Berlin."),
    ("Is ice cold or hot?", "Ice is cold.", "Ice is hot."),
    ("How many legs does a spider have?", "A spider has eight legs.", "A spider has three legs."),
    ("What colour is a clear daytime sky?", "A clear daytime sky is blue.", "A clear daytime sky is green."),
    ("Which is larger, 10 or 3?", "10 is larger than 3.", "3 is larger than 10."),
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def sft_dataset(tmp_path: Path) -> Path:
    rows = [{"prompt": question, "response": right} for question, right, _wrong in QUESTIONS]
    return write_jsonl(tmp_path / "sft.jsonl", rows)


@pytest.fixture
def preference_dataset(tmp_path: Path) -> Path:
    rows = [{"prompt": question, "chosen": right, "rejected": wrong} for question, right, wrong in QUESTIONS]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


@pytest.fixture
def spin_dataset(tmp_path: Path) -> Path:
    rows = [
        {
            "real": [{"role": "user", "content": q}, {"role": "assistant", "content": right}],
            "generated": [{"role": "user", "content": q}, {"role": "assistant", "content": wrong}],
        }
        for q, right, wrong in QUESTIONS
    ]
    return write_jsonl(tmp_path / "spin.jsonl", rows)


def tiny_training(**overrides) -> TrainingArgs:
    """A few fast steps on the tiny model: a high learning rate so the loss visibly moves."""
    values = {
        "max_steps": 4,
        "per_device_batch_size": 2,
        "learning_rate": 5e-3,
        "save_steps": 2,
        "max_length": 64,
        "max_prompt_length": 48,
        "optimizer": "adamw",
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "device": "cpu",
    }
    values.update(overrides)
    return TrainingArgs.from_dict(values)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    """The tiny test model's tokenizer, loaded once per module (its chat template formats every example)."""
    from pipelines.training.models import load_tokenizer

    return load_tokenizer(tiny_model_dir)

"""DPO on the real SmolLM2-135M: easy pairs (right vs clearly wrong answers) raise held-out implicit-reward accuracy."""

from __future__ import annotations

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.training.arguments import LoraSettings, TrainingArgs
from pipelines.training.config import PreferenceConfig
from pipelines.training.preference import run_preference

from .conftest import write_jsonl

EASY_PAIRS = [
    ("What is 2 + 2?", "2 + 2 = 4.", "2 + 2 = 9."),
    ("What is 3 + 5?", "3 + 5 = 8.", "3 + 5 = 2."),
    ("What is 10 - 4?", "10 - 4 = 6.", "10 - 4 = 13."),
    ("What is 6 x 7?", "6 x 7 = 42.", "6 x 7 = 11."),
    ("What is the capital of France?", "The capital of France is Paris.", "The capital of France is Tokyo."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo.", "The capital of Japan is Madrid."),
    ("What is the capital of Italy?", "The capital of Italy is Rome.", "The capital of Italy is Oslo."),
    ("What is the capital of Spain?", "The capital of Spain is Madrid.", "The capital of Spain is Cairo."),
    ("What is the capital of Germany?", "The capital of Germany is Berlin.", "The capital of Germany is Lima."),
    ("What is the capital of Egypt?", "The capital of Egypt is Cairo.", "The capital of Egypt is Paris."),
    ("What colour is grass?", "Grass is green.", "Grass is purple."),
    ("What colour is snow?", "Snow is white.", "Snow is black."),
    ("What colour is the sky on a clear day?", "The sky is blue.", "The sky is orange."),
    ("Is fire hot or cold?", "Fire is hot.", "Fire is cold."),
    ("Is ice hot or cold?", "Ice is cold.", "Ice is hot."),
    ("How many legs does a dog have?", "A dog has four legs.", "A dog has seven legs."),
    ("How many legs does a bird have?", "A bird has two legs.", "A bird has nine legs."),
    ("How many days are in a week?", "A week has seven days.", "A week has twelve days."),
    ("How many hours are in a day?", "A day has 24 hours.", "A day has 3 hours."),
    ("How many months are in a year?", "A year has 12 months.", "A year has 40 months."),
    ("What do cows drink?", "Cows drink water.", "Cows drink petrol."),
    ("What do bees make?", "Bees make honey.", "Bees make steel."),
    ("Where does the sun rise?", "The sun rises in the east.", "The sun rises in the south pole."),
    ("What is frozen water called?", "Frozen water is called ice.", "Frozen water is called sand."),
    ("Which animal barks?", "Dogs bark.", "Fish bark."),
    ("Which animal says meow?", "Cats say meow.", "Horses say meow."),
    ("What is the opposite of up?", "The opposite of up is down.", "The opposite of up is blue."),
    ("What is the opposite of hot?", "The opposite of hot is cold.", "The opposite of hot is tall."),
    ("What planet do we live on?", "We live on Earth.", "We live on the Sun."),
    ("What do we breathe to live?", "We breathe air, which gives us oxygen.", "We breathe sand."),
    ("What is 1 + 1?", "1 + 1 = 2.", "1 + 1 = 11."),
    ("What is 9 - 3?", "9 - 3 = 6.", "9 - 3 = 30."),
]


@pytest.mark.slow
def test_dpo_on_easy_pairs_raises_held_out_implicit_reward_accuracy(embedded_model_dir, tmp_path):
    dataset = write_jsonl(
        tmp_path / "easy-pairs.jsonl",
        [{"prompt": prompt, "chosen": right, "rejected": wrong} for prompt, right, wrong in EASY_PAIRS],
    )
    config = PreferenceConfig(
        loss="sigmoid",
        beta=0.1,
        eval_fraction=0.25,
        merge_adapter=False,
        training=TrainingArgs(
            num_epochs=2,
            per_device_batch_size=4,
            learning_rate=5e-4,
            lr_scheduler="constant",
            optimizer="adamw",
            adapter="lora",
            lora=LoraSettings(r=16, alpha=32, dropout=0.0),
            max_length=64,
            max_prompt_length=48,
            save_steps=100,
            device="cpu",
        ),
    )
    result = run_preference(config, embedded_model_dir, None, dataset, RunStore(tmp_path / "run"), RecordingProgress())
    start_accuracy = result.metrics["start_eval/rewards/accuracies"]
    end_accuracy = result.metrics["eval/rewards/accuracies"]
    assert end_accuracy > start_accuracy
    assert end_accuracy >= 0.75, result.metrics
    assert result.metrics["eval/rewards/margins"] > 0

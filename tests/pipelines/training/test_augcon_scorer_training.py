"""AugCon's scorer as the training layer trains it: the paper's schedule and its backbone, stated."""

from __future__ import annotations

import pytest

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.scorer import train_scorer
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs

PAIRS = [
    {"context": "The pass statement does nothing.", "pos_query": "What does pass do?", "neg_query": "zz qq"},
    {"context": "Lists are mutable sequences.", "pos_query": "Are lists mutable?", "neg_query": "blue blue"},
]


def paper_scorer_args(**overrides) -> TrainingArgs:
    """AugCon's default scorer settings, shortened to a few CPU steps (warmup 2 steps instead of 50)."""
    values = {
        **AugConConfig().scorer.to_dict(),
        "max_steps": 6,
        "per_device_batch_size": 2,
        "save_steps": 6,
        "max_length": 64,
        "max_prompt_length": 48,
        "device": "cpu",
        "dtype": "float32",
        "torch_threads": 1,
        "lora": {"r": 4, "alpha": 4, "dropout": 0.05, "target_modules": "all-linear"},
        "trainer_overrides": {"warmup_steps": 2},
    }
    values.update(overrides)
    return TrainingArgs.from_dict(values)


def test_the_scorer_warms_up_then_holds_its_learning_rate_as_deepspeeds_warmuplr(tiny_model_dir, tmp_path):
    args = paper_scorer_args()
    assert AugConConfig().scorer.lr_scheduler == "constant_with_warmup"
    progress = RecordingProgress()
    train_scorer(args, tiny_model_dir, PAIRS, RunStore(tmp_path / "scorer"), progress)
    rates = [row["learning_rate"] for row in progress.metric_rows if "learning_rate" in row]
    assert len(rates) == 6
    assert rates[0] < rates[1] < args.learning_rate  # the two warmup steps
    assert rates[2:] == pytest.approx([args.learning_rate] * 4)  # then constant, no decay


def test_the_scorer_states_its_backbone_against_the_papers_qlora(tiny_model_dir, tmp_path):
    import torch

    progress = RecordingProgress()
    result = train_scorer(
        paper_scorer_args(max_steps=1, save_steps=1), tiny_model_dir, PAIRS, RunStore(tmp_path / "s"), progress
    )
    assert result.metrics["backbone"] == "lora-float32"
    assert "the paper: QLoRA on a 4-bit NF4 base" in result.metrics["backbone_note"]
    assert any("scorer backbone: LoRA over a float32 base" in message for message in progress.messages)
    again = train_scorer(
        paper_scorer_args(max_steps=1, save_steps=1), tiny_model_dir, PAIRS, RunStore(tmp_path / "s"), RecordingProgress()
    )
    assert again.metrics["backbone"] == "lora-float32"  # recorded with the result, read back by QueryScorer
    if not torch.cuda.is_available():
        with pytest.raises(InvalidConfigError, match="qlora needs a CUDA GPU"):
            train_scorer(paper_scorer_args(qlora=True), tiny_model_dir, PAIRS, RunStore(tmp_path / "q"), RecordingProgress())


def test_scorer_texts_over_max_length_are_counted(tiny_model_dir, tmp_path):
    long_pairs = [{**PAIRS[0], "context": "The pass statement does nothing. " * 40}, PAIRS[1]]
    progress = RecordingProgress()
    result = train_scorer(
        paper_scorer_args(max_steps=1, save_steps=1), tiny_model_dir, long_pairs, RunStore(tmp_path / "s"), progress
    )
    assert result.metrics["texts_cut"] == 2
    assert any("2 of 4 scorer texts are over max_length 64" in message for message in progress.messages)

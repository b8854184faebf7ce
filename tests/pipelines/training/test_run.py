"""`run_training`, the common-shape entry point: the model by its spec in, one model output and the summary out."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError
from pipelines.llm.loader import LocalBackends
from pipelines.training import RewardConfig, SFTConfig, TrainingInputs, run_training

from .conftest import tiny_training


def test_run_training_resolves_the_model_trains_and_returns_the_model_and_summary(
    tiny_model_dir, sft_dataset, model_cache_dir, tmp_path
):
    config = SFTConfig(training=tiny_training())
    inputs = TrainingInputs(model={"source": "local", "path": str(tiny_model_dir)}, dataset_path=sft_dataset)
    store, progress = RunStore(tmp_path / "run"), RecordingProgress()
    result = run_training(config, inputs, LocalBackends(model_cache_dir), store, progress)

    assert progress.stages[0] == ("load model", 1) and progress.done_by_stage["load model"] == 1
    (model,) = result.models
    assert (model.key, model.task, model.parent, model.dataset) == ("model", "generation", "model", "dataset")
    assert model.output_dir == Path(store.path("final", "merged")) and (model.output_dir / "config.json").is_file()
    assert model.training_config == config.to_dict()
    assert model.parameter_count > 0 and "loss" in model.metrics
    summary = result.summary
    assert summary["steps"] == 4 and summary["output_dir"] == str(model.output_dir)
    assert summary["adapter_dir"] == str(store.path("final", "adapter"))
    assert 0 < summary["trainable_parameters"] < model.parameter_count
    assert summary["lengths/rows"] == 6 and summary["lengths/max_length"] == 64
    assert "train_loss" in summary and "train_runtime" in summary
    assert "learning_rate" not in summary  # how the run went, not its outcome
    assert not result.artifacts


def test_a_reference_model_is_refused_outside_preference_training(sft_dataset, model_cache_dir, tmp_path):
    spec = {"source": "local", "path": "/nowhere"}
    inputs = TrainingInputs(model=spec, dataset_path=sft_dataset, reference_model=spec)
    with pytest.raises(InvalidConfigError, match="only preference training") as refused:
        run_training(RewardConfig(), inputs, LocalBackends(model_cache_dir), RunStore(tmp_path), RecordingProgress())
    assert refused.value.field == "reference_model"

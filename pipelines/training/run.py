"""Training in the common pipeline shape: `run_training(config, inputs, backends, store, progress)`.

The config's class picks the trainer (SFT, preference, reward model); `run_sft`, `run_preference`
and `run_reward` stay the trainers' own entry points, which SPIN, ALMoST and AugCon call with
directories they already hold. Importing this module is light: the trainers (torch) load when a
run starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.common.result import ModelOutput, PipelineResult
from pipelines.errors import InvalidConfigError
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.result import TrainingResult, metrics_worth_keeping

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.common.store import RunStore
    from pipelines.llm.loader import BackendLoader


@dataclass(frozen=True)
class TrainingInputs:
    """What a training run trains on: backend specs of its models (weights resolved by the loader) and its dataset."""

    model: dict[str, Any]
    """The model to train, as a registry entry's backend spec."""
    dataset_path: Path
    """The training rows (JSONL) in one of the trainer's layouts (`layouts.DATASET_LAYOUTS`)."""
    reference_model: dict[str, Any] | None = None
    """Preference training only: the frozen reference; None uses the model itself (DPO's SFT model)."""


def run_training(
    config: SFTConfig | PreferenceConfig | RewardConfig,
    inputs: TrainingInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
) -> PipelineResult:
    """Fine-tune the input model on the dataset; the trained model comes back as the output "model".

    The store holds the checkpoints, so a rerun resumes from the newest one (the step count goes on)
    and a rerun of a finished run returns its result without training again.
    """
    if inputs.reference_model is not None and not isinstance(config, PreferenceConfig):
        raise InvalidConfigError("only preference training uses a reference model", field="reference_model")
    progress.stage("load model", total=1)
    model_dir = backends.model_directory(inputs.model)
    progress.advance(1)
    result = _train(config, model_dir, inputs, backends, store, progress)
    return training_pipeline_result(config, result)


def training_pipeline_result(
    config: SFTConfig | PreferenceConfig | RewardConfig, result: TrainingResult
) -> PipelineResult:
    """A finished training as the pipeline's result: the model output "model" and the run page's summary.

    Shared by the in-process run and the process-group launchers (`pipelines/training/distributed/`).
    """
    reward = isinstance(config, RewardConfig)
    return PipelineResult(
        models=[
            ModelOutput(
                key="model",
                output_dir=Path(result.output_dir),
                task="reward" if reward else "generation",
                training_config=config.to_dict(),
                metrics=result.metrics,
                parameter_count=result.parameter_count,
            )
        ],
        summary=training_summary(result),
    )


def _train(
    config: SFTConfig | PreferenceConfig | RewardConfig,
    model_dir: Path,
    inputs: TrainingInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
) -> TrainingResult:
    if isinstance(config, SFTConfig):
        from pipelines.training.sft import run_sft

        return run_sft(config, model_dir, inputs.dataset_path, store, progress)
    if isinstance(config, PreferenceConfig):
        from pipelines.training.preference import run_preference

        reference_dir = backends.model_directory(inputs.reference_model) if inputs.reference_model else None
        return run_preference(config, model_dir, reference_dir, inputs.dataset_path, store, progress)
    from pipelines.training.reward import run_reward

    return run_reward(config, model_dir, inputs.dataset_path, store, progress)


def training_summary(result: TrainingResult) -> dict[str, Any]:
    """The run page's figures: steps, where the model went, token lengths against the limits, final losses.

    The lengths are all there, rows cut or dropped included, so nothing is cut unseen.
    """
    return {
        "steps": result.steps,
        "output_dir": result.output_dir,
        "adapter_dir": result.adapter_dir or "",
        "trainable_parameters": result.trainable_parameter_count,
        **{f"lengths/{key}": value for key, value in result.lengths.items()},
        **metrics_worth_keeping(result.metrics),
    }

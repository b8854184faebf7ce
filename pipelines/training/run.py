"""Training in the common pipeline shape: `run_training(config, inputs, backends, store, progress)`.

The config's class picks the trainer (SFT, preference, reward model, RL against a reward model); `run_sft`, `run_preference`
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
from pipelines.training.rl.config import RLConfig

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
    reward_model: dict[str, Any] | None = None
    """RL only: the reward model the policy is trained against (`dataset_path` then holds the prompts)."""


TrainingConfig = SFTConfig | PreferenceConfig | RewardConfig | RLConfig
REWARD_MODEL_ROLE = "reward_model"
"""The role under which an RL run's worker names the reward model (the policy's `reward_model` lineage)."""


def run_training(
    config: TrainingConfig,
    inputs: TrainingInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
) -> PipelineResult:
    """Fine-tune the input model on the dataset; the trained model comes back as the output "model".

    The store holds the checkpoints, so a rerun resumes from the newest one (the step count goes on)
    and a rerun of a finished run returns its result without training again.
    """
    check_training_inputs(config, inputs)
    progress.stage("load model", total=1)
    model_dir = backends.model_directory(inputs.model)
    progress.advance(1)
    result = _train(config, model_dir, inputs, backends, store, progress)
    return training_pipeline_result(config, result, store)


def check_training_inputs(config: TrainingConfig, inputs: TrainingInputs) -> None:
    """A reference model is for preference training only; a reward model is for RL only, and RL needs one."""
    if inputs.reference_model is not None and not isinstance(config, PreferenceConfig):
        raise InvalidConfigError("only preference training uses a reference model", field="reference_model")
    if isinstance(config, RLConfig) != (inputs.reward_model is not None):
        raise InvalidConfigError(
            "RL trains against a reward model, and only RL does", field="reward_model"
        )


def training_pipeline_result(config: TrainingConfig, result: TrainingResult, store: RunStore | None = None) -> PipelineResult:
    """A finished training as the pipeline's result: the model output "model" and the run page's summary.

    Shared by the in-process run and the process-group launchers (`pipelines/training/distributed/`).
    """
    reward = isinstance(config, RewardConfig)
    summary = training_summary(result)
    if isinstance(config, RLConfig) and store is not None:
        from pipelines.training.rl.run import rl_summary

        summary.update(rl_summary(store))
    return PipelineResult(
        models=[
            ModelOutput(
                key="model",
                output_dir=Path(result.output_dir),
                task="reward" if reward else "generation",
                training_config=config.to_dict(),
                metrics=result.metrics,
                parameter_count=result.parameter_count,
                reward_model=REWARD_MODEL_ROLE if isinstance(config, RLConfig) else "",
            )
        ],
        summary=summary,
    )


def _train(
    config: TrainingConfig,
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
    if isinstance(config, RLConfig):
        from pipelines.training.rl.run import run_rl

        assert inputs.reward_model is not None  # check_training_inputs
        reward_dir = backends.model_directory(inputs.reward_model)
        return run_rl(config, model_dir, reward_dir, inputs.dataset_path, store, progress)
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

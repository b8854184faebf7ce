"""Training runs on the devices a worker owns: in this process for one, as a torchrun group for more.

`run_training_on_processes` has the pipeline shape plus the worker's choice of processes and devices
(`workers/kinds/training.py` binds them). Whatever the count, the run keeps the effective batch it
started with (`effective_batch.py`), so a checkpoint written by a group resumes in one process and
the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import InvalidConfigError
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.distributed.effective_batch import keep_effective_batch
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.rl.config import RLConfig
from pipelines.training.run import TrainingInputs, check_training_inputs, run_training, training_pipeline_result

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.common.result import PipelineResult
    from pipelines.common.store import RunStore
    from pipelines.llm.loader import BackendLoader


def run_training_on_processes(
    config: SFTConfig | PreferenceConfig | RewardConfig | RLConfig,
    inputs: TrainingInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
    *,
    processes: int = 1,
    devices: list[str] | None = None,
) -> PipelineResult:
    """`run_training` on `processes` processes of this host (`devices`: their CUDA ids, or None for CPU)."""
    from pipelines.training.distributed.launch import launch_local
    from pipelines.training.saving import finished_result

    check_training_inputs(config, inputs)
    if isinstance(config, RLConfig):
        check_rl_processes(config, processes)
    config = keep_effective_batch(config, store, processes, progress)
    if processes == 1 and not devices:
        return run_training(config, inputs, backends, store, progress)
    progress.stage("load model", total=1)
    model_dir = backends.model_directory(inputs.model)
    reference_dir = backends.model_directory(inputs.reference_model) if inputs.reference_model else None
    reward_dir = backends.model_directory(inputs.reward_model) if inputs.reward_model else None
    progress.advance(1)
    done = finished_result(store)
    if done is not None:
        return training_pipeline_result(config, done, store)
    backends.release_all()  # the ranks load their own copies; a warm backend here would only hold memory
    job = DistributedJob.for_config(
        config,
        model_dir=model_dir,
        dataset_path=inputs.dataset_path,
        run_dir=store.root,
        reference_model_dir=reference_dir,
        reward_model_dir=reward_dir,
    )
    return training_pipeline_result(config, launch_local(job, processes, devices, progress), store)


def check_rl_processes(config: RLConfig, processes: int) -> None:
    """RLOO and GRPO run as a process group (TRL's trainers under accelerate, the batch split across ranks);
    our PPO trains in one process, so a PPO run asking for more is refused rather than cut to one."""
    if config.algorithm == "ppo" and processes > 1:
        raise InvalidConfigError(
            f"PPO trains in one process (policy, value model, reference and reward model on one device); this run "
            f"asks for {processes}: set distributed.processes to 1, or choose rloo or grpo, which run on many",
            field="distributed",
        )

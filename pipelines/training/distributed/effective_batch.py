"""Keep a run's effective batch when it resumes on a different number of processes.

The first attempt records per-device batch x accumulation x processes; a later attempt on another
number of processes gets the gradient accumulation that gives the same product (HF Trainer resumes
`checkpoint-N` on another world size when the batch per optimizer step is unchanged: the same steps
per epoch, the same learning-rate schedule), and the log says so.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pipelines.training.arguments import accumulation_for_effective_batch, effective_batch
from pipelines.training.distributed.job import DISTRIBUTED_DIR

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.common.store import RunStore
    from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig

EFFECTIVE_BATCH_FILE = "effective_batch.json"


def keep_effective_batch(
    config: SFTConfig | PreferenceConfig | RewardConfig,
    store: RunStore,
    processes: int,
    progress: Progress,
) -> Any:
    """`config` with the accumulation that keeps the run's recorded effective batch on `processes` processes.

    The first call records the effective batch; refuses (InvalidConfigError) a process count the
    recorded batch cannot be split into exactly.
    """
    training = config.training
    now = effective_batch(training, processes)
    if not store.exists(DISTRIBUTED_DIR, EFFECTIVE_BATCH_FILE):
        store.write_json({"effective_batch": now, "processes": processes}, DISTRIBUTED_DIR, EFFECTIVE_BATCH_FILE)
        return config
    recorded = store.read_json(DISTRIBUTED_DIR, EFFECTIVE_BATCH_FILE)
    target = int(recorded["effective_batch"])
    if now == target:
        return config
    accumulation = accumulation_for_effective_batch(target, training.per_device_batch_size, processes)
    progress.log(
        f"keeping the run's effective batch of {target} on {processes} process(es) instead of "
        f"{recorded['processes']}: gradient accumulation {training.gradient_accumulation_steps} -> {accumulation} "
        f"({training.per_device_batch_size} per device x {accumulation} x {processes} = {target})"
    )
    store.write_json({"effective_batch": target, "processes": processes}, DISTRIBUTED_DIR, EFFECTIVE_BATCH_FILE)
    return dataclasses.replace(config, training=dataclasses.replace(training, gradient_accumulation_steps=accumulation))

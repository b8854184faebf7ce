"""What every rank of a distributed training run needs, as one JSON file the launcher hands over.

The worker resolves everything that needs Django or the model loader (model weights, the dataset's
path, the run directory) before launching, so a rank needs nothing but this file and the shared
filesystem.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.common.store import atomic_writer
from pipelines.errors import InvalidConfigError
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.rl.config import RLConfig

TRAINERS: dict[str, type[SFTConfig] | type[PreferenceConfig] | type[RewardConfig] | type[RLConfig]] = {
    "sft": SFTConfig,
    "preference": PreferenceConfig,
    "reward": RewardConfig,
    "rl": RLConfig,
}
DISTRIBUTED_DIR = "distributed"
"""The run directory's folder for the group's own files: the job, the events, the rank logs, cancel."""
JOB_FILE = "job.json"
EVENTS_FILE = "events.jsonl"
CANCEL_FILE = "cancel-requested"
RANK_LOGS_DIR = "ranks"


def trainer_name(config: SFTConfig | PreferenceConfig | RewardConfig | RLConfig) -> str:
    """The `TRAINERS` key of a config's class."""
    for name, config_class in TRAINERS.items():
        if isinstance(config, config_class):
            return name
    raise InvalidConfigError(f"no distributed trainer for a {type(config).__name__}")


@dataclass(frozen=True)
class DistributedJob:
    """One training run for a process group: the config, its inputs on disk and where it writes.

    `run_dir` is the run's `RunStore` root, shared by every rank (checkpoints, final model, events).
    """

    trainer: str
    """"sft", "preference", "reward" or "rl": which trainer every rank runs."""
    config: dict[str, Any]
    """The trainer's config as `config.to_dict()` (after any effective-batch adjustment for this group)."""
    model_dir: str
    """The model to train, resolved to a local directory by the worker's loader."""
    dataset_path: str
    """The training rows (JSONL)."""
    run_dir: str
    """The run store's root; checkpoints and final/ live there."""
    reference_model_dir: str | None = None
    """Preference training only: the frozen reference's directory; None uses the model itself."""
    reward_model_dir: str | None = None
    """RL only: the reward model's directory (`dataset_path` then holds the prompts)."""

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise InvalidConfigError(f"trainer must be one of {', '.join(TRAINERS)}; got {self.trainer!r}")
        if self.reference_model_dir is not None and self.trainer != "preference":
            raise InvalidConfigError("only preference training uses a reference model", field="reference_model")
        if (self.reward_model_dir is not None) != (self.trainer == "rl"):
            raise InvalidConfigError("RL trains against a reward model, and only RL does", field="reward_model")

    @classmethod
    def for_config(
        cls,
        config: SFTConfig | PreferenceConfig | RewardConfig | RLConfig,
        *,
        model_dir: str | Path,
        dataset_path: str | Path,
        run_dir: str | Path,
        reference_model_dir: str | Path | None = None,
        reward_model_dir: str | Path | None = None,
    ) -> DistributedJob:
        return cls(
            trainer=trainer_name(config),
            config=config.to_dict(),
            model_dir=str(model_dir),
            dataset_path=str(dataset_path),
            run_dir=str(run_dir),
            reference_model_dir=str(reference_model_dir) if reference_model_dir is not None else None,
            reward_model_dir=str(reward_model_dir) if reward_model_dir is not None else None,
        )

    def training_config(self) -> SFTConfig | PreferenceConfig | RewardConfig | RLConfig:
        """The config object, checked again by its class (a job file is input like any other)."""
        return TRAINERS[self.trainer].from_dict(self.config)

    @property
    def group_dir(self) -> Path:
        return Path(self.run_dir) / DISTRIBUTED_DIR

    @property
    def events_path(self) -> Path:
        """Rank 0's events (JSON lines) the supervisor replays into the run's Progress."""
        return self.group_dir / EVENTS_FILE

    @property
    def cancel_path(self) -> Path:
        """The supervisor creates it to ask the group to save a checkpoint and stop."""
        return self.group_dir / CANCEL_FILE

    def rank_log_path(self, rank: int) -> Path:
        """Where rank `rank` writes its stdout and stderr (appended across attempts)."""
        return self.group_dir / RANK_LOGS_DIR / f"rank-{rank}.log"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistributedJob:
        return cls(**data)

    def write(self, path: str | Path | None = None) -> Path:
        """Write the job atomically (default `<run dir>/distributed/job.json`); returns the path."""
        target = Path(path) if path is not None else self.group_dir / JOB_FILE
        with atomic_writer(target) as handle:
            handle.write(json.dumps(self.to_dict(), indent=2))
        return target

    @classmethod
    def read(cls, path: str | Path) -> DistributedJob:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

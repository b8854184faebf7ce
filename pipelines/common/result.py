"""What every pipeline entry point returns: the datasets and models it made, and its summary figures.

Every method's `run(config, inputs, backends, store, progress)` returns a `PipelineResult`, so one
generic worker (`workers/runner.py`) registers what any method produced: each `ArtifactOutput`
becomes an artifact of the run, each `ModelOutput` a registry entry with its lineage, and `summary`
the figures on the run page. A pipeline that finishes outputs early (SPIN's iterations, ALMoST's
reward model) hands them over as they are done with `progress.publish(PipelineResult(...))`, so a
crashed worker loses no finished work; registering the same output again (a resume, or the final
result listing it once more) updates it, never duplicates it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ArtifactOutput:
    """A dataset the run wrote: JSONL (and its parquet twin) inside the run directory.

    `name` is unique within the run (it is how a `ModelOutput` names the data it was trained on);
    `kind` is one of the artifact kinds the site knows ("generations", "sft", "preferences", ...).
    """

    name: str
    kind: str
    jsonl_path: Path
    parquet_path: Path | None = None


@dataclass(frozen=True)
class ModelOutput:
    """A trained checkpoint, with what the registry needs to show its lineage.

    - `key` is unique within the run ("model", "iter0", "reward-model"), so a later output can name
      this one as its `parent`.
    - `parent`: the key of an earlier output of this run, or a role of the run's input models
      (the worker names them; "model" is the run's own model and the default).
    - `dataset`: the name of an `ArtifactOutput` of this run, or a role of the run's input
      datasets ("dataset", the default, is the dataset the run was given).
    - `reward_model`: RL only, the key of an earlier output or a role of the run's input models naming
      the reward model the policy was trained against ("" for none).
    - `label` goes after the parent's name in the registry ("SmolLM2 → SPIN iter0 #12"); empty
      means the run kind's label.
    - `metrics` may hold everything the trainer logged: the registry keeps the figures worth keeping.
    """

    key: str
    output_dir: Path
    task: str = "generation"  # or "reward"
    parent: str = "model"
    dataset: str = "dataset"
    label: str = ""
    reward_model: str = ""
    training_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parameter_count: int = 0


@dataclass
class PipelineResult:
    """Everything one pipeline call produced; registered in order: artifacts, then models, then the summary.

    `summary` is merged into the run's summary (a flat mapping the run page shows as a table;
    nested values are for the method's own section of the page).
    """

    artifacts: list[ArtifactOutput] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    models: list[ModelOutput] = field(default_factory=list)

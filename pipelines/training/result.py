"""What a finished training run produced, as the trainers return it and `final/result.json` keeps it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainingResult:
    """What a finished training run produced."""

    output_dir: str
    """The model to use next: the merged model with LoRA (or the adapter when not merged), else the full model."""
    adapter_dir: str | None
    """The LoRA adapter, when one was trained."""
    merged_dir: str | None
    """The adapter merged into the base, when merged."""
    metrics: dict[str, Any]
    """Last logged metrics plus the run summary (train_loss, runtime) and held-out metrics."""
    steps: int
    """Optimizer steps taken in total (across resumes)."""
    parameter_count: int
    """Parameters of the trained model (base plus adapter)."""
    trainable_parameter_count: int = 0
    """Parameters that received gradients."""
    lengths: dict[str, Any] = field(default_factory=dict)
    """The dataset's token lengths against the limits and what was cut or dropped (`LengthReport.summary`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingResult:
        return cls(**data)


WORTH_KEEPING_WORDS = ("loss", "accurac", "margin", "runtime")
"""What makes a logged figure worth keeping after the run: losses, accuracies, margins, runtime."""


def metrics_worth_keeping(metrics: dict[str, Any]) -> dict[str, float]:
    """The figures of what a training logged worth keeping once it is over, rounded: on the registry
    entry of the model and in the run's summary.

    The rest (learning rate, epoch, step counters) describes the run as it went, not the model.
    """
    return {
        name: round(float(value), 5)
        for name, value in metrics.items()
        if not isinstance(value, bool)
        and isinstance(value, int | float)
        and any(word in name for word in WORTH_KEEPING_WORDS)
    }

"""Configuration of a generate run, stored as JSON on the run and validated before queueing."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError
from pipelines.llm.loader import BackendSpec
from pipelines.llm.types import SamplingParams


@dataclass(frozen=True)
class GenerateInputs:
    """What a generate run answers with; the prompts are the run directory's snapshot (`pipelines.common.prompts`)."""

    model: BackendSpec
    """The model's backend spec (a registry entry's `backend_spec()`), loaded only if some batch is missing."""


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate and how; the prompts themselves are a JSONL file in the run directory."""

    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(max_tokens=128))
    """Sampling for every prompt; `sampling.n` answers per prompt."""
    batch_size: int = 8
    """Prompts per model call; one finished batch is the unit of resume and of progress."""
    system_prompt: str = ""
    """Optional system message placed before every prompt."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 1024:
            raise InvalidConfigError(f"batch_size must be between 1 and 1024, got {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sampling"] = self.sampling.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateConfig:
        values = known_fields(cls, data, "generate config")
        values["sampling"] = SamplingParams.from_dict(values.get("sampling") or {})
        return cls(**values)

"""Configuration of a win-rate evaluation: who answers (candidates, baseline), who judges, and the statistics.

Stored as JSON on the run and validated before queueing, so a worker never meets a config it rejects.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError
from pipelines.evaluation.judge import JudgeConfig
from pipelines.llm.types import SamplingParams

ContestantKind = Literal["model", "answers"]
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_ANSWER_SAMPLING = SamplingParams(temperature=0.7, top_p=1.0, max_tokens=256, seed=0)


@dataclass(frozen=True)
class Contestant:
    """A source of answers: a model with a decoding config, or a file of existing answers."""

    contestant_id: str
    """File-safe id within the run (e.g. `baseline`, `c0`)."""
    label: str
    """Shown on pages and the leaderboard."""
    kind: ContestantKind = "model"
    backend_spec: dict[str, Any] = field(default_factory=dict)
    """For a model: what `pipelines.llm.factory.build_backend` loads."""
    sampling: SamplingParams = DEFAULT_ANSWER_SAMPLING
    """For a model: its decoding config (one answer per prompt)."""
    system_prompt: str = ""
    answers_path: str = ""
    """For answers: a JSONL file with a prompt field (prompt/instruction) and an answer field."""
    leaderboard_key: str = ""
    """Identity across evaluations (same model and decoding = same key); set by whoever builds the config."""

    def __post_init__(self) -> None:
        if not _ID_PATTERN.match(self.contestant_id):
            raise InvalidConfigError(f"contestant_id {self.contestant_id!r} must be 1-64 letters, digits, _ or -")
        if self.kind not in ("model", "answers"):
            raise InvalidConfigError(f"contestant {self.label!r}: kind must be model or answers, not {self.kind!r}")
        if self.kind == "model" and not self.backend_spec:
            raise InvalidConfigError(f"contestant {self.label!r}: a model contestant needs backend_spec")
        if self.kind == "answers" and not self.answers_path:
            raise InvalidConfigError(f"contestant {self.label!r}: an answers contestant needs answers_path")
        if self.sampling.n != 1:
            raise InvalidConfigError(f"contestant {self.label!r}: one answer per prompt, sampling.n must be 1")

    @property
    def model_key(self) -> str:
        """The answer cache's model identity: what is loaded, not what it is called."""
        return model_cache_key(self.backend_spec) if self.kind == "model" else ""

    @property
    def decoding_key(self) -> str:
        return decoding_cache_key(self.sampling, self.system_prompt) if self.kind == "model" else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "contestant_id": self.contestant_id,
            "label": self.label,
            "kind": self.kind,
            "backend_spec": dict(self.backend_spec),
            "sampling": self.sampling.to_dict(),
            "system_prompt": self.system_prompt,
            "answers_path": self.answers_path,
            "leaderboard_key": self.leaderboard_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contestant:
        values = known_fields(cls, data, "contestant")
        values["sampling"] = SamplingParams.from_dict(values.get("sampling") or DEFAULT_ANSWER_SAMPLING.to_dict())
        return cls(**values)


@dataclass(frozen=True)
class EvaluationInputs:
    """What an evaluation reads besides its config and the run directory's prompt snapshot.

    The models (contestants' and the judge's backend specs) are in the config, since they are part
    of what was asked for; these are the site's state at the time the run starts.
    """

    answer_cache_dir: Path
    """The shared answer cache (outside the run, so other evaluations reuse its answers)."""
    reference_preferences: Mapping[str, list[float]] | None = None
    """Other models' preferences per prompt text against the same baseline by the same judge; when
    given, the length-controlled GLM gets its instruction-difficulty term. Kept in the run directory
    the first time, so a resumed attempt uses the same ones."""


@dataclass(frozen=True)
class EvaluationConfig:
    """Candidates against one baseline on the run's prompts, judged pairwise in both orders."""

    candidates: tuple[Contestant, ...]
    baseline: Contestant
    judge_spec: dict[str, Any]
    """The judge model's backend spec (any registered model, local or an OpenAI-compatible endpoint)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    answer_batch_size: int = 8
    """Prompts per answering call; answers are cached as each batch finishes."""
    judge_batch_size: int = 8
    """Judgments per judge call; one finished batch is the unit of resume."""
    bootstrap_rounds: int = 2000
    """Resamples for the win rate's interval (cheap: a mean per round)."""
    lc_bootstrap_rounds: int = 200
    """Resamples for the length-controlled win rate's interval (a GLM refit per round)."""
    confidence: float = 0.95
    seed: int = 0
    """Seeds the judge's sampling and every bootstrap, so a rerun reports the same numbers."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))
        if not self.candidates:
            raise InvalidConfigError("an evaluation needs at least one candidate", field="candidates")
        ids = [c.contestant_id for c in self.candidates] + [self.baseline.contestant_id]
        if len(set(ids)) != len(ids):
            raise InvalidConfigError(f"contestant ids must be distinct, got {', '.join(ids)}")
        if not self.judge_spec:
            raise InvalidConfigError("an evaluation needs a judge model (judge_spec)", field="judge_spec")
        for name in ("answer_batch_size", "judge_batch_size"):
            if not 1 <= getattr(self, name) <= 1024:
                raise InvalidConfigError(f"{name} must be between 1 and 1024, got {getattr(self, name)}", field=name)
        if not 1 <= self.bootstrap_rounds <= 100_000:
            raise InvalidConfigError(
                f"bootstrap_rounds must be between 1 and 100000, got {self.bootstrap_rounds}", field="bootstrap_rounds"
            )
        if not 0 <= self.lc_bootstrap_rounds <= 10_000:
            raise InvalidConfigError(
                f"lc_bootstrap_rounds must be between 0 and 10000, got {self.lc_bootstrap_rounds}",
                field="lc_bootstrap_rounds",
            )
        if not 0.5 <= self.confidence < 1:
            raise InvalidConfigError(f"confidence must be in [0.5, 1), got {self.confidence}", field="confidence")
        if not 0 <= self.judge.retries <= 10:
            raise InvalidConfigError(f"judge.retries must be between 0 and 10, got {self.judge.retries}")

    @property
    def contestants(self) -> tuple[Contestant, ...]:
        return (self.baseline, *self.candidates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": [c.to_dict() for c in self.candidates],
            "baseline": self.baseline.to_dict(),
            "judge_spec": dict(self.judge_spec),
            "judge": self.judge.to_dict(),
            "answer_batch_size": self.answer_batch_size,
            "judge_batch_size": self.judge_batch_size,
            "bootstrap_rounds": self.bootstrap_rounds,
            "lc_bootstrap_rounds": self.lc_bootstrap_rounds,
            "confidence": self.confidence,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationConfig:
        values = known_fields(cls, data, "evaluation config")
        values["candidates"] = tuple(Contestant.from_dict(c) for c in values.get("candidates") or ())
        if "baseline" not in values:
            raise InvalidConfigError("an evaluation needs a baseline", field="baseline")
        values["baseline"] = Contestant.from_dict(values["baseline"])
        values["judge"] = JudgeConfig.from_dict(values.get("judge") or {})
        return cls(**values)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def model_cache_key(spec: dict[str, Any]) -> str:
    """A model's identity for the answer cache: weights location (or endpoint) and dtype, not its display name."""
    kind = spec.get("kind") or "transformers"
    source = spec.get("source") or "local"
    if kind == "openai" or source == "endpoint":
        identity = {"endpoint": (spec.get("base_url") or "").rstrip("/"), "served": spec.get("served_model_name") or ""}
    elif source == "embedded":
        identity = {"embedded": True, "kind": kind, "dtype": spec.get("dtype") or "auto"}
    else:
        identity = {
            "path": str(Path(spec.get("path") or "").resolve()),
            "kind": kind,
            "dtype": spec.get("dtype") or "auto",
        }
    return _digest(identity)


def decoding_cache_key(sampling: SamplingParams, system_prompt: str = "") -> str:
    """A decoding config's identity: every sampling field and the system prompt."""
    return _digest({"sampling": sampling.to_dict(), "system_prompt": system_prompt})


def prompt_cache_key(prompt: str) -> str:
    return _digest(prompt)

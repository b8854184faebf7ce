"""AFT's configurations: propose-and-aggregate inference, and aggregation training data construction.

Inference reads the three config formats of the official repository (Linzwcs/AFT), each with the
meaning its own code gives it:

- the first release (`src/openmoa`, @6e17f15, the README's format): `proposal_params`,
  `aggregation_params` (each `temperature`, `top_p`, `max_tokens`, `n`: vLLM SamplingParams),
  `hidden_layer` (aggregation layers before the final one), `final_aggregation` (add a final n = 1
  layer, greedy), `vllm_seed`, `model_name`; plus our `final_params` for that final layer;
- the intermediate commit (`src/aft` @3cfa3d9): `proposal_params`, `aggregation_params` and
  `num_aggregation`: `num_aggregation - 1` hidden layers at the aggregation parameters, then a final
  layer sampled at the aggregation parameters with n = 1 and top_p = 1;
- the current code (`src/aft` @d1d4ab2): `generation_params` (the four fields plus
  `final_layer_temperature`, `final_layer_top_p`) and `num_aggregation`, again counting every
  aggregation step *including* the final one (the YAML comment says otherwise; the code builds
  `num_aggregation - 1` hidden layers).

A key that belongs to another format, or that the chosen format would ignore, is refused by name:
nothing is dropped in silence. Every limit (samples, tokens, temperature, layers, seed) lives in
`check_sampling_limits` and `AftConfig.__post_init__`, so the form, a YAML file and any other caller
meet the same bounds.

Defaults are the paper's: temperature 0.7, top_p 0.95, max_tokens 4096, n 5, seed 2024; the first
release's final aggregation is greedy (temperature 0) with n = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.common.config_fields import check_seed, known_fields
from pipelines.errors import InvalidConfigError
from pipelines.llm.loader import BackendSpec
from pipelines.llm.types import SamplingParams

MODES = ("aggregate", "single")
"""`aggregate`: proposals -> aggregation layers -> final answer; `single`: one plain sample (the baseline)."""
TARGET_RULES = ("aggregator", "best_response")
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "n")
MAX_HIDDEN_LAYERS = 16
MAX_SAMPLES_PER_LAYER = 64
"""Samples per layer; the paper uses 5, and every one of them is read by each aggregation after it."""
MAX_NEW_TOKENS = 32768
"""New tokens per sample; the paper uses 4096, and the aggregation prompt holds n of them."""
MAX_TEMPERATURE = 2.0
MAX_BATCH_SIZE = 1024
FORMAT_KEYS = {
    "first release": ("proposal_params", "aggregation_params", "hidden_layer", "final_aggregation", "final_params"),
    "intermediate": ("proposal_params", "aggregation_params", "num_aggregation"),
    "current": ("generation_params", "num_aggregation"),
}
"""The keys each repository format uses (`final_params` is ours, an extension of the first release)."""
COMMON_KEYS = ("model_name", "vllm_seed", "seed", "batch_size", "mode")
"""Keys every format accepts (`seed`, `batch_size`, `mode` are ours)."""


def paper_sampling() -> SamplingParams:
    """Proposal and aggregation sampling of the paper: T 0.7, top_p 0.95, 4096 new tokens, 5 samples."""
    return SamplingParams(n=5, temperature=0.7, top_p=0.95, max_tokens=4096)


def greedy_final(max_tokens: int = 4096) -> SamplingParams:
    """The first release's final aggregation: greedy, one answer."""
    return SamplingParams(n=1, temperature=0.0, top_p=1.0, max_tokens=max_tokens)


@dataclass(frozen=True)
class LayerPlan:
    """One layer of the network: what it is called, its role, and how it samples."""

    name: str
    role: str
    """`proposal`, `aggregation`, `final` or `single`."""
    sampling: SamplingParams


@dataclass(frozen=True)
class AftInputs:
    """What an inference run answers with; the prompts are the run directory's snapshot (`pipelines.common.prompts`)."""

    model: BackendSpec
    """The model every layer samples from (a registry entry's `backend_spec()`), loaded only if some batch is missing."""


@dataclass(frozen=True)
class AftConfig:
    """Propose-and-aggregate over a prompt set; one model plays proposer and aggregator."""

    proposal: SamplingParams = field(default_factory=paper_sampling)
    """Proposal layer: `n` drafts of the user's message (system message "\\n")."""
    aggregation: SamplingParams = field(default_factory=paper_sampling)
    """Each hidden aggregation layer: `n` new responses, each seeing all of the previous layer's."""
    final: SamplingParams = field(default_factory=greedy_final)
    """Final aggregation: one answer (n must be 1); greedy in the first release."""
    hidden_layer: int = 0
    """Aggregation layers between the proposals and the final aggregation."""
    final_aggregation: bool = True
    """Add the final n = 1 aggregation; without it the answer is the last layer's first response."""
    seed: int | None = 2024
    """Base seed; each batch and layer derives its own, so a resumed run draws the same text."""
    batch_size: int = 8
    """Prompts per model call and per resume unit (a finished batch is a file)."""
    mode: str = "aggregate"
    """`aggregate`, or `single`: one sample per prompt with the proposal settings (the baseline)."""
    model_name: str = ""
    """The YAML's `model_name`, kept for the record; the run's registered model is what runs."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}", field="mode")
        if not 0 <= self.hidden_layer <= MAX_HIDDEN_LAYERS:
            raise InvalidConfigError(
                f"hidden_layer must be between 0 and {MAX_HIDDEN_LAYERS}, got {self.hidden_layer}", field="hidden_layer"
            )
        check_sampling_limits("proposal_params", self.proposal)
        check_sampling_limits("aggregation_params", self.aggregation)
        check_sampling_limits("final_params", self.final)
        if self.final.n != 1:
            raise InvalidConfigError(
                f"final_params.n must be 1 (the final aggregation gives one answer), got {self.final.n}",
                field="final_params.n",
            )
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidConfigError(
                f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}", field="batch_size"
            )
        check_seed("seed", self.seed)

    # -- the network -------------------------------------------------------------------------------

    def layers(self) -> list[LayerPlan]:
        """The layers in order; `single` mode is one layer of one sample."""
        if self.mode == "single":
            return [LayerPlan("single sample", "single", _replace_sampling(self.proposal, n=1))]
        plan = [LayerPlan("proposals", "proposal", self.proposal)]
        plan += [
            LayerPlan(f"aggregation {index}", "aggregation", self.aggregation)
            for index in range(1, self.hidden_layer + 1)
        ]
        if self.final_aggregation:
            plan.append(LayerPlan("final aggregation", "final", self.final))
        return plan

    def generations_per_prompt(self) -> int:
        return sum(layer.sampling.n for layer in self.layers())

    def max_new_tokens_per_prompt(self) -> int:
        return sum(layer.sampling.n * layer.sampling.max_tokens for layer in self.layers())

    def cost_estimate(self, prompt_count: int) -> dict[str, Any]:
        """What a run over `prompt_count` prompts asks of the model, at most; shown before queueing."""
        return {
            "prompts": prompt_count,
            "layers": [
                {
                    "name": layer.name,
                    "samples": layer.sampling.n,
                    "max_tokens": layer.sampling.max_tokens,
                    "temperature": layer.sampling.temperature,
                    "top_p": layer.sampling.top_p,
                }
                for layer in self.layers()
            ],
            "generations_per_prompt": self.generations_per_prompt(),
            "generations": prompt_count * self.generations_per_prompt(),
            "max_new_tokens_per_prompt": self.max_new_tokens_per_prompt(),
            "max_new_tokens": prompt_count * self.max_new_tokens_per_prompt(),
            "model_calls": -(-prompt_count // self.batch_size) * len(self.layers()),
        }

    # -- serialisation -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (first-release keys plus ours); `from_dict` reads it back.

        Any of the three formats maps onto it; `final_params` is left out when there is no final layer.
        """
        data: dict[str, Any] = {
            "proposal_params": _sampling_dict(self.proposal),
            "aggregation_params": _sampling_dict(self.aggregation),
            "hidden_layer": self.hidden_layer,
            "final_aggregation": self.final_aggregation,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "mode": self.mode,
            "model_name": self.model_name,
        }
        if self.final_aggregation:
            data["final_params"] = _sampling_dict(self.final)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> AftConfig:
        """Read any of the repository's three formats (or ours); errors name the key.

        The format is told by its keys: `generation_params` is the current code's, `num_aggregation`
        without it the intermediate commit's, anything else the first release's (and ours).
        """
        if not isinstance(data, dict):
            raise InvalidConfigError(f"an AFT config must be a mapping of fields, found {type(data).__name__}")
        known = set(COMMON_KEYS).union(*FORMAT_KEYS.values())
        unknown = set(data) - known
        if unknown:
            raise InvalidConfigError(
                f"unknown AFT config field(s): {', '.join(sorted(unknown))}; known fields: {', '.join(sorted(known))}"
            )
        if "seed" in data and "vllm_seed" in data and data["seed"] != data["vllm_seed"]:
            raise InvalidConfigError("seed and vllm_seed are the same setting; give one", field="seed")
        seed_key = "seed" if "seed" in data else "vllm_seed"
        seed = _optional_int(seed_key, data.get("seed", data.get("vllm_seed", 2024)))
        check_seed(seed_key, seed)
        values: dict[str, Any] = {
            "seed": seed,
            "batch_size": _int("batch_size", data.get("batch_size", 8)),
            "mode": _str("mode", data.get("mode", "aggregate")),
            "model_name": _str("model_name", data.get("model_name") or ""),
        }
        config_format = config_format_of(data)
        _refuse_keys_of_other_formats(data, config_format)
        if config_format == "current":
            values.update(_current_format(data))
        elif config_format == "intermediate":
            values.update(_intermediate_format(data))
        else:
            values.update(_first_release_format(data))
        return cls(**values)

    @classmethod
    def from_yaml(cls, text: str, source: str = "config.yaml") -> AftConfig:
        """Parse a YAML file in the repository's format; a syntax error names the line."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{source}, line {mark.line + 1}" if mark is not None else source
            problem = getattr(error, "problem", None) or str(error)
            raise InvalidConfigError(f"{where}: not valid YAML ({problem})") from error
        if data is None:
            raise InvalidConfigError(f"{source} is empty")
        try:
            return cls.from_dict(data)
        except InvalidConfigError as error:
            raise InvalidConfigError(f"{source}: {error}", field=error.field) from error


def config_format_of(data: dict[str, Any]) -> str:
    """Which repository format a config mapping is in: `current`, `intermediate` or `first release`."""
    if "generation_params" in data:
        return "current"
    if "num_aggregation" in data:
        return "intermediate"
    return "first release"


# Why a key cannot stand in a format: it belongs to another one, or the format would ignore it.
_FOREIGN_KEY_REASONS = {
    "current": {
        "proposal_params": "generation_params sets the proposals in the current format",
        "aggregation_params": "generation_params sets the aggregation layers in the current format",
        "hidden_layer": "num_aggregation sets the layers in the current format (hidden layers = num_aggregation - 1)",
        "final_aggregation": "the current format always ends with a final aggregation",
        "final_params": "generation_params.final_layer_temperature and final_layer_top_p set the final layer in the current format",
    },
    "intermediate": {
        "hidden_layer": "it conflicts with num_aggregation (hidden layers = num_aggregation - 1); give one of them",
        "final_aggregation": "a config with num_aggregation always ends with a final aggregation",
        "final_params": "with num_aggregation the final layer samples at aggregation_params with top_p 1; "
        "use the first release's hidden_layer to set final_params",
    },
}


def _refuse_keys_of_other_formats(data: dict[str, Any], config_format: str) -> None:
    reasons = _FOREIGN_KEY_REASONS.get(config_format, {})
    for key, reason in reasons.items():
        if key in data:
            raise InvalidConfigError(f"{key} cannot be used here: {reason}", field=key)
    if config_format == "first release" and "final_params" in data and data.get("final_aggregation") is False:
        raise InvalidConfigError(
            "final_params cannot be used here: final_aggregation is false, so there is no final layer to set",
            field="final_params",
        )


def _layer_count(data: dict[str, Any]) -> int:
    """`num_aggregation` as the code reads it: every aggregation step, the final one included."""
    num_aggregation = _int("num_aggregation", data.get("num_aggregation", 2))
    if not 0 <= num_aggregation <= MAX_HIDDEN_LAYERS + 1:
        raise InvalidConfigError(
            f"num_aggregation must be between 0 and {MAX_HIDDEN_LAYERS + 1}, got {num_aggregation}",
            field="num_aggregation",
        )
    # The code builds range(num_aggregation - 1) hidden layers and always a final one: 0 and 1 are alike.
    return max(num_aggregation - 1, 0)


def _first_release_format(data: dict[str, Any]) -> dict[str, Any]:
    """`proposal_params`, `aggregation_params`, `hidden_layer`, `final_aggregation` (+ our `final_params`)."""
    proposal = _sampling("proposal_params", data.get("proposal_params", {}), paper_sampling())
    aggregation = _sampling("aggregation_params", data.get("aggregation_params", {}), paper_sampling())
    final = _sampling("final_params", data.get("final_params", {}), greedy_final(aggregation.max_tokens))
    return {
        "proposal": proposal,
        "aggregation": aggregation,
        "final": final,
        "hidden_layer": _int("hidden_layer", data.get("hidden_layer", 0)),
        "final_aggregation": _bool("final_aggregation", data.get("final_aggregation", True)),
    }


def _intermediate_format(data: dict[str, Any]) -> dict[str, Any]:
    """`proposal_params`, `aggregation_params`, `num_aggregation` (commit 3cfa3d9).

    Its `MoA` builds `num_aggregation - 1` hidden layers at `aggregation_params` and a final layer
    from the same parameters with `n = 1` and `top_p = 1`: sampled at the aggregation temperature,
    not greedy.
    """
    proposal = _sampling("proposal_params", data.get("proposal_params", {}), paper_sampling())
    aggregation = _sampling("aggregation_params", data.get("aggregation_params", {}), paper_sampling())
    return {
        "proposal": proposal,
        "aggregation": aggregation,
        "final": _replace_sampling(aggregation, n=1, top_p=1.0),
        "hidden_layer": _layer_count(data),
        "final_aggregation": True,
    }


def _current_format(data: dict[str, Any]) -> dict[str, Any]:
    """`generation_params` + `num_aggregation`: shared sampling, a separate final temperature/top_p."""
    raw = data["generation_params"]
    if not isinstance(raw, dict):
        raise InvalidConfigError(
            f"generation_params must be a mapping, found {type(raw).__name__}", field="generation_params"
        )
    final_keys = {"final_layer_temperature", "final_layer_top_p"}
    shared = _sampling("generation_params", {k: v for k, v in raw.items() if k not in final_keys}, paper_sampling())
    final_temperature = _number("generation_params.final_layer_temperature", raw.get("final_layer_temperature", 0.7))
    final_top_p = _number("generation_params.final_layer_top_p", raw.get("final_layer_top_p", 1.0))
    final = _sampling(
        "generation_params",
        {"temperature": final_temperature, "top_p": final_top_p, "max_tokens": shared.max_tokens, "n": 1},
        shared,
        label={"temperature": "final_layer_temperature", "top_p": "final_layer_top_p"},
    )
    return {
        "proposal": shared,
        "aggregation": shared,
        "final": final,
        "hidden_layer": _layer_count(data),
        "final_aggregation": True,
    }


def check_sampling_limits(section: str, sampling: SamplingParams) -> None:
    """The bounds every AFT layer's sampling meets, whoever wrote the config (form, YAML, API)."""
    if not 1 <= sampling.n <= MAX_SAMPLES_PER_LAYER:
        raise InvalidConfigError(
            f"{section}.n must be between 1 and {MAX_SAMPLES_PER_LAYER}, got {sampling.n}", field=f"{section}.n"
        )
    if not 1 <= sampling.max_tokens <= MAX_NEW_TOKENS:
        raise InvalidConfigError(
            f"{section}.max_tokens must be between 1 and {MAX_NEW_TOKENS}, got {sampling.max_tokens}",
            field=f"{section}.max_tokens",
        )
    if not 0 <= sampling.temperature <= MAX_TEMPERATURE:
        raise InvalidConfigError(
            f"{section}.temperature must be between 0 and {MAX_TEMPERATURE:g}, got {sampling.temperature}",
            field=f"{section}.temperature",
        )


def _sampling(section: str, raw: Any, defaults: SamplingParams, label: dict[str, str] | None = None) -> SamplingParams:
    """A sampling section: the four fields, each checked, missing ones from `defaults`."""
    if not isinstance(raw, dict):
        raise InvalidConfigError(
            f"{section} must be a mapping of {', '.join(SAMPLING_KEYS)}, found {type(raw).__name__}", field=section
        )
    unknown = set(raw) - set(SAMPLING_KEYS)
    if unknown:
        raise InvalidConfigError(
            f"{section}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(SAMPLING_KEYS)}",
            field=section,
        )
    label = label or {}
    values = {
        "temperature": _number(f"{section}.temperature", raw.get("temperature", defaults.temperature)),
        "top_p": _number(f"{section}.top_p", raw.get("top_p", defaults.top_p)),
        "max_tokens": _int(f"{section}.max_tokens", raw.get("max_tokens", defaults.max_tokens)),
        "n": _int(f"{section}.n", raw.get("n", defaults.n)),
    }
    try:
        sampling = SamplingParams(**values)
        check_sampling_limits("sampling", sampling)
    except InvalidConfigError as error:
        message = str(error)
        for key in SAMPLING_KEYS:
            message = message.replace(f"sampling.{key}", f"{section}.{label.get(key, key)}")
        key = (error.field or "").removeprefix("sampling.")
        raise InvalidConfigError(message, field=f"{section}.{label.get(key, key)}" if key else section) from error
    return sampling


def _sampling_dict(sampling: SamplingParams) -> dict[str, Any]:
    return {key: getattr(sampling, key) for key in SAMPLING_KEYS}


def _replace_sampling(sampling: SamplingParams, **changes: Any) -> SamplingParams:
    return SamplingParams.from_dict({**sampling.to_dict(), **changes})


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfigError(f"{name} must be a number, got {value!r}", field=name)
    return float(value)


def _int(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError(f"{name} must be a whole number, got {value!r}", field=name)
    return value


def _optional_int(name: str, value: Any) -> int | None:
    return None if value is None else _int(name, value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be true or false, got {value!r}", field=name)
    return value


def _str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidConfigError(f"{name} must be text, got {value!r}", field=name)
    return value


# -- aggregation training data -------------------------------------------------------------------


@dataclass(frozen=True)
class AggregationDataInputs:
    """What an aggregation-data run reads, and the model that writes its targets."""

    source_path: Path
    """The dataset of prompts with several responses (JSONL), read once into `groups.jsonl`."""
    model: BackendSpec | None = None
    """The aggregator model; only the `aggregator` rule needs one, and it is loaded only then."""


@dataclass(frozen=True)
class AggregationDataConfig:
    """How to turn prompts with several responses into aggregation SFT rows.

    Each row is `[system: aggregator instruction + numbered proposals, user: query] -> assistant:
    target`, the inference format, so a model trained on it aggregates the way inference asks.
    """

    target_rule: str = "aggregator"
    """`aggregator` (the paper's): a model, ideally stronger, writes the aggregation of the
    proposals; `best_response`: the highest-rated response of the group (a preference dataset's
    `chosen`, or the best of `scores`), no model needed."""
    aggregator: SamplingParams = field(default_factory=greedy_final)
    """How the aggregator model writes targets (`aggregator` rule): greedy, one answer."""
    max_proposals: int = 5
    """Proposals per example, at most (the paper's n = 5; UltraFeedback has 4 responses per prompt)."""
    min_proposals: int = 1
    """Groups with fewer proposals (after the target is set aside) are skipped and counted."""
    include_target_in_proposals: bool = False
    """`best_response` only: also show the target among the proposals. Off by default, so the model
    learns to write a better answer than its drafts rather than to copy one of them."""
    shuffle_proposals: bool = True
    """Shuffle each group's proposals (seeded), so a response's position says nothing about its quality."""
    plain_rows: bool = False
    """Also add one plain `[system: "\\n", user: query] -> target` row per prompt, so the trained model
    stays a good proposer (the proposal layer's format)."""
    seed: int = 2024
    batch_size: int = 8
    """Groups per aggregator call and per resume unit."""
    max_examples: int = 0
    """Use at most this many prompt groups (0: all), in dataset order."""

    def __post_init__(self) -> None:
        if self.target_rule not in TARGET_RULES:
            raise InvalidConfigError(
                f"target_rule must be one of {', '.join(TARGET_RULES)}, got {self.target_rule!r}", field="target_rule"
            )
        check_sampling_limits("aggregator", self.aggregator)
        if self.aggregator.n != 1:
            raise InvalidConfigError(
                f"aggregator.n must be 1 (one target per example), got {self.aggregator.n}", field="aggregator.n"
            )
        check_seed("seed", self.seed)
        if not 1 <= self.min_proposals <= self.max_proposals <= 32:
            raise InvalidConfigError(
                f"need 1 <= min_proposals <= max_proposals <= 32, got min_proposals {self.min_proposals}, "
                f"max_proposals {self.max_proposals}",
                field="min_proposals",
            )
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidConfigError(
                f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}", field="batch_size"
            )
        if self.max_examples < 0:
            raise InvalidConfigError(
                f"max_examples must be 0 (all) or positive, got {self.max_examples}", field="max_examples"
            )

    @property
    def needs_model(self) -> bool:
        return self.target_rule == "aggregator"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_rule": self.target_rule,
            "aggregator": _sampling_dict(self.aggregator),
            "max_proposals": self.max_proposals,
            "min_proposals": self.min_proposals,
            "include_target_in_proposals": self.include_target_in_proposals,
            "shuffle_proposals": self.shuffle_proposals,
            "plain_rows": self.plain_rows,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "max_examples": self.max_examples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AggregationDataConfig:
        values = known_fields(cls, data, "aggregation data")
        if "aggregator" in values:
            values["aggregator"] = _sampling("aggregator", values["aggregator"], greedy_final())
        for name in ("max_proposals", "min_proposals", "seed", "batch_size", "max_examples"):
            if name in values:
                values[name] = _int(name, values[name])
        for name in ("include_target_in_proposals", "shuffle_proposals", "plain_rows"):
            if name in values:
                values[name] = _bool(name, values[name])
        return cls(**values)

"""ALMoST's configuration: the rubric of response configurations and the settings of each step.

Defaults are the official code's (naver-ai/ALMoST, `synthetic_feedback.py` and `train.py`):
prompt generation with 10 in-context seeds at temperature 1.2, top_p 0.9, 64 new tokens, rejecting
prompts with ROUGE-L >= 0.5 to an earlier one; responses at temperature 1.0, top_p 0.9, 384 new
tokens (768 for the Faithful prompt); a response is "bad" when shorter than 50 characters, ending
in ? or :, starting with "well", not ending in . or !, saying it does not know, or holding "Human:"
or "<Image>" in any case; comparisons pair each better configuration with the best-ranked worse one,
skipping a pair whose chosen response is shorter than the rejected one and than mean - std/2, then
drop a pair whose two texts are equal (after pairing, as the original's reward-model loader); the
reward model trains with lr 2e-5, weight decay 0.1, 1 epoch, cosine, 3% warmup, max length 1024, all
weights, 128 pairs a step (`RewardConfig`'s defaults). The RMSP sample count is not in the released
code (RMSP was never released): 4 here.

Every limit is checked here, in the config classes, so a config from the form, a dict or YAML is
refused past the same bounds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.common.config_fields import MAX_SEED, known_fields
from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import effective_batch, effective_batch_text
from pipelines.training.config import REWARD_EFFECTIVE_BATCH, RewardConfig, SFTConfig
from pipelines.training.rl.config import RLConfig

RESPONSE_RULES = (
    "empty",
    "too_short",
    "ends_with_question",
    "starts_with_well",
    "no_final_punctuation",
    "dont_know",
    "contains_human_turn",
    "contains_image",
)
"""Rules on one response (the original's `check_bad`, plus "empty"); a pair fails when either side does."""
PAIR_RULES = ("length", "identical")
"""Rules on a pair: the original's `check_length` heuristic, and chosen == rejected (the original's reward-model
loader drops those, after pairing: see `comparisons`)."""
FILTERS = RESPONSE_RULES + PAIR_RULES
"""Every named filter, in the order the summary counts pairs before/after each."""
FILTER_DESCRIPTIONS = {
    "empty": "a response is empty (the model stopped at once)",
    "too_short": "a response is shorter than min_response_chars (50)",
    "ends_with_question": "a response ends with ? or : (it asks back or trails off)",
    "starts_with_well": "a response starts with “well” (a hedge)",
    "no_final_punctuation": "a response does not end with . or ! (cut off)",
    "dont_know": "a response says “don't know” / “do not know”",
    "contains_human_turn": "a response holds “Human:” in any case (it wrote the user's next turn)",
    "contains_image": "a response holds “<Image>” in any case",
    "length": "chosen is shorter than rejected and shorter than mean - std/2 of the prompt's responses",
    "identical": "chosen and rejected are the same text (checked after pairing, as the original's reward-model "
    "loader: the pair still uses up the chosen configuration's one pair)",
}


MAX_CONFIGURATIONS = 32
"""Rubric entries at most (each is a full pass of responses over every prompt)."""
SHOTS_RANGE = (0, 64)
RESPONSE_MAX_TOKENS_RANGE = (1, 32768)
NUM_GENERATION_RANGE = (1, 1_000_000)
IN_CONTEXT_RANGE = (1, 100)
PROMPT_MAX_TOKENS_RANGE = (1, 4096)
RMSP_N_RANGE = (1, 64)
"""The bounds the form shows are these (read by webapp/almost/forms.py), so the two cannot drift apart."""


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    """A number (not a bool, not a string) in [low, high]: the one place every limit lives, whether the config
    came from the form, a dict or YAML."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfigError(f"{name} must be a number between {low} and {high}, got {value!r}", field=name)
    if not low <= value <= high:
        raise InvalidConfigError(f"{name} must be between {low} and {high}, got {value}", field=name)


def _check_integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidConfigError(f"{name} must be an integer between {low} and {high}, got {value!r}", field=name)
    _check_range(name, value, low, high)


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be true or false, got {value!r}", field=name)


LONG_DEMONSTRATION_MAX_TOKENS = 768
"""The original gives the Faithful prompt's (long, detailed) responses 768 new tokens."""
DEFAULT_RESPONSE_MAX_TOKENS = 384
"""... and every other configuration's 384."""


def default_response_max_tokens(prompt_label: str) -> int:
    """The original's `768 if "Faithful" in prompt_file_path else 384`, on our lower-case prompt label."""
    return LONG_DEMONSTRATION_MAX_TOKENS if "faithful" in prompt_label.lower() else DEFAULT_RESPONSE_MAX_TOKENS


@dataclass(frozen=True)
class ResponseConfiguration:
    """One rubric entry: a model prompted with `shots` demonstration dialogues of prompt set `prompt`."""

    model: str
    """The model's label: names the configuration and is what the backend provider loads."""
    shots: int
    """Demonstration dialogues placed before the user's prompt (the original uses 1, 3 or 5)."""
    prompt: str = ""
    """Label of the demonstration prompt (preamble + dialogues), e.g. "hhh" or "faithful"; "" for none."""
    max_tokens: int | None = None
    """New tokens for a response; None: the original's rule, 768 with a Faithful prompt (a label holding
    "faithful"), else 384 (`synthetic_feedback.response_generation`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise InvalidConfigError(
                f"configuration {self.model!r}: prompt must be a label (text), got {self.prompt!r}"
            )
        if not isinstance(self.model, str) or not self.model or "/" in self.model:
            raise InvalidConfigError(f"configuration model label {self.model!r} must be non-empty and hold no '/'")
        _check_integer(f"configuration {self.model}: shots", self.shots, *SHOTS_RANGE)
        if self.shots and not self.prompt:
            raise InvalidConfigError(
                f"configuration {self.model} with {self.shots} shots needs a demonstration prompt to take them from"
            )
        if self.max_tokens is None:
            object.__setattr__(self, "max_tokens", default_response_max_tokens(self.prompt))
        _check_integer(f"configuration {self.name}: max_tokens", self.max_tokens, *RESPONSE_MAX_TOKENS_RANGE)

    @property
    def name(self) -> str:
        return configuration_name(self.model, self.prompt, self.shots)


def configuration_name(model: str, prompt: str, shots: int) -> str:
    """`<model>-<prompt>-<k>shot` ("none" without a prompt), as the original names its response files.

    The one rule: the pipeline's file names, the form's messages and the run page all read it here.
    """
    return f"{model}-{prompt or 'none'}-{shots}shot"


@dataclass(frozen=True)
class PromptGenerationConfig:
    """Step pg: new user prompts written by a model shown a few seed prompts."""

    num_generation: int = 100
    """New prompts to produce (the paper: 100 per run of a seed file)."""
    in_context: int = 10
    """Prompts (seeds and already accepted ones) sampled as in-context examples per generation (the paper: 10)."""
    temperature: float = 1.2
    top_p: float = 0.9
    max_tokens: int = 64
    batch_size: int = 4
    """Generations per model call; one call's candidates are one resumable round."""
    min_chars: int = 30
    """A prompt shorter than this that does not end in punctuation is rejected ("too_short")."""
    max_chars: int = 250
    """A prompt longer than this is rejected ("too_long"; the original's test is inverted, see the docs)."""
    rouge_l_threshold: float | None = 0.5
    """Reject a prompt whose ROUGE-L F to any seed or accepted prompt is at least this; None switches it off."""
    embedding_threshold: float | None = 0.9
    """Reject a prompt whose MiniLM cosine similarity to any seed or accepted prompt is at least this; None: off."""
    max_candidates_per_prompt: int = 10
    """Give up after num_generation x this many candidates (a model that only repeats itself would loop forever)."""
    model: str = ""
    """Label of the model that writes prompts; "" uses the rubric's first (best) configuration's model."""
    constrained_output: bool = True
    """Decode each new query under a grammar of one line of at most max_chars characters, so none comes
    back empty or too long (ours: the paper samples freely and filters; off reproduces that)."""
    seed: int = 42

    def __post_init__(self) -> None:
        if not isinstance(self.constrained_output, bool):
            raise InvalidConfigError(
                f"prompt_generation.constrained_output must be true or false, got {self.constrained_output!r}"
            )
        _check_integer("prompt_generation.num_generation", self.num_generation, *NUM_GENERATION_RANGE)
        _check_integer("prompt_generation.in_context", self.in_context, *IN_CONTEXT_RANGE)
        _check_range("prompt_generation.temperature", self.temperature, 0, 5)
        if not 0 < self.top_p <= 1:
            raise InvalidConfigError(f"prompt_generation.top_p must be in (0, 1], got {self.top_p}")
        _check_integer("prompt_generation.max_tokens", self.max_tokens, *PROMPT_MAX_TOKENS_RANGE)
        _check_integer("prompt_generation.batch_size", self.batch_size, 1, 1024)
        _check_integer("prompt_generation.min_chars", self.min_chars, 0, 10_000)
        _check_integer("prompt_generation.max_chars", self.max_chars, 1, 100_000)
        if self.max_chars <= self.min_chars:
            raise InvalidConfigError(
                f"prompt_generation.max_chars ({self.max_chars}) must be above min_chars ({self.min_chars})"
            )
        for name in ("rouge_l_threshold", "embedding_threshold"):
            value = getattr(self, name)
            if value is not None:
                _check_range(f"prompt_generation.{name}", value, 0.01, 1.0)
        _check_integer("prompt_generation.max_candidates_per_prompt", self.max_candidates_per_prompt, 1, 1000)
        _check_integer("prompt_generation.seed", self.seed, 0, MAX_SEED)


@dataclass(frozen=True)
class ResponseGenerationConfig:
    """Step rg: sampling of one response per prompt and configuration."""

    temperature: float = 1.0
    top_p: float = 0.9
    batch_size: int = 32
    """Prompts per model call; one finished batch of one configuration is the unit of resume. 32 fills a
    CPU backend's rows (`REFINERY_GENERATION_BATCH_SIZE`): batches of 4 ran at ~38 tokens/s on 2 cores."""
    seed: int = 42

    def __post_init__(self) -> None:
        _check_range("response_generation.temperature", self.temperature, 0, 5)
        if not 0 < self.top_p <= 1:
            raise InvalidConfigError(f"response_generation.top_p must be in (0, 1], got {self.top_p}")
        _check_integer("response_generation.batch_size", self.batch_size, 1, 1024)
        _check_integer("response_generation.seed", self.seed, 0, MAX_SEED)


@dataclass(frozen=True)
class ComparisonConfig:
    """Step cs: pairs by rubric order and the heuristic filters, each switchable by name."""

    filters: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FILTERS, True))
    """Filter name -> on/off; names not given keep their default (on)."""
    min_response_chars: int = 50
    """The "too_short" rule's bound (the original's min_length)."""
    length_std_factor: float = 0.5
    """The "length" rule's bound is mean - this x std of the prompt's response lengths."""
    one_pair_per_chosen: bool = True
    """As the original: each configuration is chosen at most once per prompt, against the best-ranked worse
    configuration whose pair passes the filters. Off: every passing rubric-ordered pair is kept."""

    def __post_init__(self) -> None:
        if not isinstance(self.filters, dict):
            raise InvalidConfigError(
                f"comparisons.filters must be an object of filter name -> true/false, got {self.filters!r}"
            )
        unknown = set(self.filters) - set(FILTERS)
        if unknown:
            raise InvalidConfigError(
                f"unknown comparison filter(s) {', '.join(sorted(unknown))}; the filters are {', '.join(FILTERS)}"
            )
        for name, value in self.filters.items():
            _check_flag(f"comparisons.filters.{name}", value)
        object.__setattr__(self, "filters", {name: self.filters.get(name, True) for name in FILTERS})
        _check_flag("comparisons.one_pair_per_chosen", self.one_pair_per_chosen)
        _check_integer("comparisons.min_response_chars", self.min_response_chars, 0, 100_000)
        _check_range("comparisons.length_std_factor", self.length_std_factor, 0, 10)

    def enabled(self, name: str) -> bool:
        return self.filters[name]


@dataclass(frozen=True)
class RMSPConfig:
    """Step RMSP: the rubric's best configuration samples n responses per prompt; the reward model keeps one."""

    n: int = 4
    """Samples per prompt (not released by the authors; 4 is our choice)."""
    configuration: int = 0
    """Index in the rubric of the configuration that samples (0: the best, as the paper's "prompted strong" model)."""
    temperature: float = 1.0
    top_p: float = 0.9
    batch_size: int = 8
    """Prompts per model call (x n samples each: 8 x 4 fills a CPU backend's 32 rows); a finished batch is the
    unit of resume."""
    max_prompts: int = 0
    """Use the first this many generated prompts (0: all)."""
    scorer_batch_size: int = 8
    enabled: bool = True
    seed: int = 7

    def __post_init__(self) -> None:
        _check_integer("rmsp.n", self.n, *RMSP_N_RANGE)
        _check_integer("rmsp.configuration", self.configuration, 0, 1000)
        _check_range("rmsp.temperature", self.temperature, 0, 5)
        if not 0 < self.top_p <= 1:
            raise InvalidConfigError(f"rmsp.top_p must be in (0, 1], got {self.top_p}")
        _check_integer("rmsp.batch_size", self.batch_size, 1, 1024)
        _check_integer("rmsp.max_prompts", self.max_prompts, 0, 10_000_000)
        _check_integer("rmsp.scorer_batch_size", self.scorer_batch_size, 1, 4096)
        _check_flag("rmsp.enabled", self.enabled)
        _check_integer("rmsp.seed", self.seed, 0, MAX_SEED)


@dataclass(frozen=True)
class PolicyConfig:
    """The paper's last two stages: ALMoST-SFT on the RMSP demonstrations, then RL from synthetic feedback.

    Off by default (a run stops after RMSP, as the released code does). The policy starts from the
    run's policy base (the reward model's base unless the run names another, as the paper trains both
    from LLaMA-7B). With the policy on, `rl.held_out_prompts` generated prompts are kept out of RMSP, SFT
    and RL, to measure the base, SFT and RL policies' reward on prompts none of them trained on.
    """

    sft_enabled: bool = False
    """Train the SFT policy on the RMSP demonstrations (needs RMSP)."""
    rl_enabled: bool = False
    """Then train it against the reward model (needs the SFT policy: the paper's reference is the SFT model)."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """ALMoST-SFT: lr 2e-5, 3 epochs, max length 512 (the training layer's SFT defaults are the paper's)."""
    rl: RLConfig = field(default_factory=RLConfig)
    """RLSF: PPO with TRL's settings by default; RLOO or GRPO as options."""

    def __post_init__(self) -> None:
        _check_flag("policy.sft_enabled", self.sft_enabled)
        _check_flag("policy.rl_enabled", self.rl_enabled)
        if self.rl_enabled and not self.sft_enabled:
            raise InvalidConfigError(
                "policy.rl_enabled needs policy.sft_enabled: RL starts from the SFT policy, which is also its reference",
                field="policy.rl_enabled",
            )
        if self.rl.training.prompt_format != self.sft.training.prompt_format:
            raise InvalidConfigError(
                f"the RL stage reads prompts as {self.rl.training.prompt_format} but the SFT policy learnt "
                f"{self.sft.training.prompt_format}: set both prompt formats alike"
            )

    @property
    def held_out_prompts(self) -> int:
        """Generated prompts kept out of RMSP, SFT and RL when the policy is trained (0 when it is not)."""
        return self.rl.held_out_prompts if self.sft_enabled else 0

    def to_dict(self) -> dict[str, Any]:
        return {"sft_enabled": self.sft_enabled, "rl_enabled": self.rl_enabled,
                "sft": self.sft.to_dict(), "rl": self.rl.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        values = known_fields(cls, data, "policy")
        if isinstance(values.get("sft"), dict):
            values["sft"] = SFTConfig.from_dict(values["sft"])
        if isinstance(values.get("rl"), dict):
            values["rl"] = RLConfig.from_dict(values["rl"])
        return cls(**values)


def _almost_reward_defaults() -> RewardConfig:
    return RewardConfig()  # the training layer's reward defaults are ALMoST's


@dataclass(frozen=True)
class AlmostConfig:
    """A whole ALMoST run: pg -> rg (one output per configuration) -> cs -> reward model -> RMSP."""

    configurations: list[ResponseConfiguration]
    """The rubric: response configurations in descending assumed quality (best first)."""
    prompt_generation: PromptGenerationConfig = field(default_factory=PromptGenerationConfig)
    response_generation: ResponseGenerationConfig = field(default_factory=ResponseGenerationConfig)
    comparisons: ComparisonConfig = field(default_factory=ComparisonConfig)
    reward: RewardConfig = field(default_factory=_almost_reward_defaults)
    rmsp: RMSPConfig = field(default_factory=RMSPConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def __post_init__(self) -> None:
        if len(self.configurations) < 2:
            raise InvalidConfigError(
                f"the rubric needs at least two configurations to compare, got {len(self.configurations)}"
            )
        if len(self.configurations) > MAX_CONFIGURATIONS:
            raise InvalidConfigError(
                f"the rubric has {len(self.configurations)} configurations; at most {MAX_CONFIGURATIONS} are allowed"
            )
        seen: dict[str, int] = {}
        for index, configuration in enumerate(self.configurations, start=1):
            if configuration.name in seen:
                raise InvalidConfigError(
                    f"rubric entries {seen[configuration.name]} and {index} are the same configuration "
                    f"{configuration.name}; each rank needs a different configuration"
                )
            seen[configuration.name] = index
        if self.policy.sft_enabled and not self.rmsp.enabled:
            raise InvalidConfigError(
                "policy.sft_enabled needs RMSP: the SFT policy trains on its demonstrations", field="policy.sft_enabled"
            )
        if self.rmsp.enabled and self.rmsp.configuration >= len(self.configurations):
            raise InvalidConfigError(
                f"rmsp.configuration is {self.rmsp.configuration} but the rubric has "
                f"{len(self.configurations)} configurations (0 is the best)"
            )
        models = {configuration.model for configuration in self.configurations}
        if self.prompt_generation.model and self.prompt_generation.model not in models:
            raise InvalidConfigError(
                f"prompt_generation.model {self.prompt_generation.model!r} is not a model of the rubric "
                f"({', '.join(sorted(models))})"
            )

    @property
    def prompt_model(self) -> str:
        return self.prompt_generation.model or self.configurations[0].model

    @property
    def models(self) -> list[str]:
        """Distinct model labels, in rubric order: one backend each."""
        return list(dict.fromkeys(configuration.model for configuration in self.configurations))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reward"] = self.reward.to_dict()
        data["policy"] = self.policy.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlmostConfig:
        values = known_fields(cls, data, "ALMoST config")
        configurations = values.get("configurations")
        if not isinstance(configurations, list):
            raise InvalidConfigError("configurations must be a list (the rubric, best first)")
        values["configurations"] = [
            ResponseConfiguration(**known_fields(ResponseConfiguration, item, f"configurations[{index}]"))
            for index, item in enumerate(configurations)
        ]
        nested = {
            "prompt_generation": PromptGenerationConfig,
            "response_generation": ResponseGenerationConfig,
            "comparisons": ComparisonConfig,
            "rmsp": RMSPConfig,
        }
        if isinstance(values.get("prompt_generation"), dict):
            # Stored before grammars existed: its query lines were parsed from free text; a resumed run goes on so.
            values["prompt_generation"] = {"constrained_output": False, **values["prompt_generation"]}
        for name, nested_class in nested.items():
            if name in values:
                values[name] = nested_class(**known_fields(nested_class, values[name], name))
        if "reward" in values:
            values["reward"] = RewardConfig.from_dict(values["reward"])
        if "policy" in values:
            values["policy"] = PolicyConfig.from_dict(values["policy"])
        return cls(**values)


PAPER_REWARD_BATCH = f"4 per device x 8 accumulation x 4 devices = {REWARD_EFFECTIVE_BATCH}"
"""ALMoST's reward-model batch (its README's `train.py --train_reward_model` command on 4 GPUs)."""


def reward_batch(reward: RewardConfig, devices: int = 1) -> dict[str, Any]:
    """The reward model's pairs per optimizer step, spelt out for the form and the run summary.

    `devices` is 1: a worker trains the reward model in one process.
    """
    args = reward.training
    return {
        "per_device": args.per_device_batch_size,
        "accumulation": args.gradient_accumulation_steps,
        "devices": devices,
        "effective": effective_batch(args, devices),
        "text": effective_batch_text(args, devices),
        "paper": PAPER_REWARD_BATCH,
        "adapter": args.adapter,
        "held_out_fraction": reward.eval_fraction,
    }


def estimate_cost(config: AlmostConfig, *, reward_pairs_estimate: int | None = None) -> dict[str, Any]:
    """What a run asks of the models, before it runs: generations and new tokens per step (upper bounds)."""
    pg = config.prompt_generation
    prompts = pg.num_generation
    candidates_max = prompts * pg.max_candidates_per_prompt
    response_tokens = sum(configuration.max_tokens for configuration in config.configurations)
    pairs_max = prompts * (len(config.configurations) - 1)
    if not config.comparisons.one_pair_per_chosen:
        pairs_max = prompts * len(config.configurations) * (len(config.configurations) - 1) // 2
    pairs = reward_pairs_estimate if reward_pairs_estimate is not None else pairs_max
    training = config.reward.training
    per_step = training.per_device_batch_size * training.gradient_accumulation_steps
    train_pairs = max(0, pairs - math.ceil(pairs * config.reward.eval_fraction))
    steps = training.max_steps if training.max_steps > 0 else math.ceil(training.num_epochs * train_pairs / per_step)
    rmsp_prompts = min(prompts, config.rmsp.max_prompts) if config.rmsp.max_prompts else prompts
    rmsp_samples = rmsp_prompts * config.rmsp.n if config.rmsp.enabled else 0
    rmsp_tokens = (
        rmsp_samples * config.configurations[config.rmsp.configuration].max_tokens if config.rmsp.enabled else 0
    )
    return {
        "prompt_candidates_min": prompts,
        "prompt_candidates_max": candidates_max,
        "prompt_tokens_max": candidates_max * pg.max_tokens,
        "responses": prompts * len(config.configurations),
        "response_tokens_max": prompts * response_tokens,
        "pairs_max": pairs_max,
        "reward_steps": steps,
        "rmsp_samples": rmsp_samples,
        "rmsp_tokens_max": rmsp_tokens,
        "generations_max": candidates_max + prompts * len(config.configurations) + rmsp_samples,
        "new_tokens_max": candidates_max * pg.max_tokens + prompts * response_tokens + rmsp_tokens,
        "reward_batch": reward_batch(config.reward),
    }

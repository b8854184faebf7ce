"""The one generation interface every backend implements, and the values it trades in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from pipelines.errors import InvalidConfigError
from pipelines.llm.grammar import Grammar

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}
Conversation = list[Message]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; the same fields mean the same thing on every backend."""

    n: int = 1
    """Samples per prompt; backends encode the prompt once and draw n continuations."""
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    """Fixes the sampling so a rerun of the same batch draws the same text."""
    stop: tuple[str, ...] = ()
    """Generation ends at the first of these strings, which is not included in the text."""
    grammar: Grammar | None = None
    """What the reply must match (a regular expression or a JSON schema; see `pipelines.llm.grammar`);
    None: unconstrained. Every backend honours it; an OpenAI-compatible server only a JSON schema."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InvalidConfigError(f"sampling.n must be at least 1, got {self.n}", field="sampling.n")
        if self.temperature < 0:
            raise InvalidConfigError(
                f"sampling.temperature must be >= 0, got {self.temperature}", field="sampling.temperature"
            )
        if not 0 < self.top_p <= 1:
            raise InvalidConfigError(f"sampling.top_p must be in (0, 1], got {self.top_p}", field="sampling.top_p")
        if self.max_tokens < 1:
            raise InvalidConfigError(
                f"sampling.max_tokens must be at least 1, got {self.max_tokens}", field="sampling.max_tokens"
            )
        object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "grammar", Grammar.from_dict(self.grammar))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop"] = list(self.stop)
        # Absent when unconstrained, so the digests of configs written before grammars existed stay the same.
        if self.grammar is None:
            del data["grammar"]
        else:
            data["grammar"] = self.grammar.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "stop" in known:
            known["stop"] = tuple(known["stop"] or ())
        return cls(**known)


FinishReason = Literal["stop", "length"]


@dataclass
class Completion:
    """One sampled continuation with the token counts a cost report needs."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"
    meta: dict[str, Any] = field(default_factory=dict)


class LLMBackend(Protocol):
    """A loaded model that answers batches.

    `chat` applies the model's chat template; `complete` continues raw text (for methods whose
    prompts are plain completions). Both return, per input, a list of `params.n` completions.
    """

    name: str

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]: ...

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]: ...

    def close(self) -> None: ...


TokenLogprobs = dict[str, float]
"""One position's candidates for the next token: decoded token text (spaces kept) -> natural-log probability.
Token ids that decode to the same text are merged (their probabilities added)."""


@runtime_checkable
class NextTokenScorer(Protocol):
    """A backend that can say how likely each next token is after a chat prompt, instead of sampling one.

    Used by judges that read a verdict from log-probabilities (AlpacaEval 2's weighted annotators):
    the probability mass on the verdict tokens, so a small judge's verdict is never unreadable text.
    `top_k` is how many of the most likely tokens to report; `always_include` are token texts
    (compared after stripping spaces) the backend reports whether or not they are in the top k,
    where it can see the whole distribution (the transformers backend); servers only return their
    top k (OpenAI-compatible `top_logprobs` allows at most 20, vLLM its `max_logprobs`).
    """

    def chat_next_token_logprobs(
        self, conversations: Sequence[Conversation], *, top_k: int = 20, always_include: Sequence[str] = ()
    ) -> list[TokenLogprobs]: ...


def supports_next_token_logprobs(backend: object) -> bool:
    """Whether `backend` implements `NextTokenScorer` (every bundled backend does)."""
    return isinstance(backend, NextTokenScorer)

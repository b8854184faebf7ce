"""The pairwise LLM judge: an AlpacaEval-style prompt with a rubric, both orders, tolerant verdict parsing, retries.

Every prompt is judged twice, once with the candidate's answer as output A and once as output B, so
a judge that prefers a position gives the candidate one win and one loss (a 50% preference) rather
than a false result.

Two ways to read a verdict (`JudgeConfig.method`):
- `logprob` (the default, as AlpacaEval 2's weighted annotators): no text is generated; the
  backend reports the next token's log-probabilities after the judge prompt, and the judgment is the
  probability mass on the verdict tokens (`A`, `B`, `tie`, with or without a leading space),
  normalized over those three. The candidate's preference is P(candidate's label) + P(tie) / 2, a
  number in [0, 1]; the verdict shown is the most probable label. Where the backend sees the whole
  distribution (transformers) every judgment is readable; a server that reports only its top k
  tokens can miss all three, and that judgment is unreadable.
- `text`: the judge writes a short reply that `parse_verdict` reads. A reply whose verdict cannot be
  read is asked again (up to `retries` more times, sampling with `retry_temperature` and a new seed
  so a greedy judge does not repeat itself); one that still cannot be read is kept as `unparsed`,
  counted, shown, and left out of the statistics of that order only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipelines.errors import InvalidConfigError
from pipelines.llm.grammar import Grammar, choice_regex
from pipelines.llm.types import Conversation, LLMBackend, SamplingParams, TokenLogprobs, supports_next_token_logprobs

Verdict = Literal["A", "B", "tie"]
JudgeMethod = Literal["logprob", "text"]
JUDGE_METHODS: tuple[JudgeMethod, JudgeMethod] = ("logprob", "text")
VERDICT_TOKENS: dict[str, tuple[str, ...]] = {"A": ("A",), "B": ("B",), "tie": ("tie", "Tie", "TIE")}
"""The token texts (spaces stripped) that carry each verdict's probability in the log-prob judge."""
LOGPROB_TOP_K = 20
"""Most likely next tokens asked of the backend besides the verdict tokens (the OpenAI API's maximum)."""
Order = Literal["candidate_first", "baseline_first"]
ORDERS: tuple[Order, Order] = ("candidate_first", "baseline_first")

JUDGE_SYSTEM_PROMPT = (
    "You are a careful, impartial evaluator. You compare two responses that AI assistants wrote for the same "
    "instruction and decide which one a thoughtful human would prefer. Your decisions build a leaderboard, so "
    "judge the content only: the order of the responses and their length are not merits."
)

DEFAULT_CRITERIA = (
    "Prefer the response that follows the instruction, is correct and truthful, is helpful and relevant, "
    "and is clear. Penalize made-up facts, harmful content and padding."
)

JUDGE_USER_TEMPLATE = """Two assistants answered the instruction below. Decide which response is better.

## Instruction

{instruction}

## Response A

{response_a}

## Response B

{response_b}

## Criteria

{criteria}

## Your answer

Reply with exactly one of: A, B or tie. "A" if response A is better, "B" if response B is better, "tie" only if
they are equally good. Write nothing else: no explanation, no quotes, no punctuation.

Better response:"""


@dataclass(frozen=True)
class JudgeConfig:
    """How the judge model is asked."""

    criteria: str = DEFAULT_CRITERIA
    """What makes a response better (a library rubric's criteria and guidelines)."""
    sampling: SamplingParams = field(default_factory=lambda: SamplingParams(temperature=0.0, max_tokens=16))
    """The judge's decoding: greedy and short by default, since the answer is one word."""
    retries: int = 2
    """Further attempts for a reply whose verdict cannot be read."""
    retry_temperature: float = 0.7
    """Temperature of the retries (a greedy judge would repeat its unreadable reply)."""
    system_prompt: str = JUDGE_SYSTEM_PROMPT
    method: JudgeMethod = "logprob"
    """`logprob`: the probability mass on the verdict tokens (no text generated, `sampling` and the
    retries unused); `text`: generate a reply and parse it."""
    constrained_output: bool = True
    """Text judge: decode the reply under a grammar of exactly "A", "B" or "tie", so every verdict
    parses (ours: AlpacaEval's judges generate freely and parse; off reproduces that)."""

    def __post_init__(self) -> None:
        if self.method not in JUDGE_METHODS:
            raise InvalidConfigError(f"judge.method must be one of {', '.join(JUDGE_METHODS)}, not {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        data = {
            "method": self.method,
            "criteria": self.criteria,
            "sampling": self.sampling.to_dict(),
            "retries": self.retries,
            "retry_temperature": self.retry_temperature,
            "system_prompt": self.system_prompt,
        }
        # Only the text judge decodes a reply: the log-prob judge's stored configs (and digests) stay as they were.
        if self.method == "text":
            data["constrained_output"] = self.constrained_output
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeConfig:
        values = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
        # Configs stored before the log-prob judge existed were judged by parsing text.
        values.setdefault("method", "text")
        if values["method"] == "text":
            # Text-judge configs stored before grammars existed parsed free text; a rerun does the same.
            values.setdefault("constrained_output", False)
        if "sampling" in values:
            values["sampling"] = SamplingParams.from_dict(values["sampling"] or {})
        return cls(**values)


def judge_conversation(config: JudgeConfig, instruction: str, response_a: str, response_b: str) -> Conversation:
    """The judge's chat: the system role, then the instruction, both responses and the criteria."""
    user = JUDGE_USER_TEMPLATE.format(
        instruction=instruction.strip(),
        response_a=response_a.strip() or "(empty response)",
        response_b=response_b.strip() or "(empty response)",
        criteria=config.criteria.strip() or DEFAULT_CRITERIA,
    )
    conversation: Conversation = []
    if config.system_prompt:
        conversation.append({"role": "system", "content": config.system_prompt})
    conversation.append({"role": "user", "content": user})
    return conversation


# --- parsing -------------------------------------------------------------------------------------

_LABEL = r"\(?\[?\[?\s*(A|B)\s*\]?\]?\)?"
_NOUN = r"(?:response|output|answer|assistant|model|option|candidate)"
# Patterns tried in order; each yields A, B or a tie word. The first that matches decides.
_VERDICT_PATTERNS = [
    re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE),  # MT-Bench style [[A]] / [[C]] (tie)
    re.compile(r"^\W*(A|B)\W*$"),  # the whole reply is the label
    re.compile(rf"^\W*{_NOUN}\s*{_LABEL}\W*$", re.IGNORECASE),  # "Response B."
    re.compile(
        rf"(?:better|best|winning|preferred)\s+{_NOUN}\s*(?:is|:)?\s*{_NOUN}?\s*{_LABEL}(?![\w])", re.IGNORECASE
    ),
    re.compile(
        rf"(?:verdict|answer|choice|decision|winner|better response)\s*(?:is|:)\s*{_NOUN}?\s*{_LABEL}(?![\w])",
        re.IGNORECASE,
    ),
    re.compile(rf"{_NOUN}\s*{_LABEL}\s+is\s+(?:better|the better|preferred|best)", re.IGNORECASE),
    re.compile(r"^\W*(A|B)\s*[.:)\n]"),  # "B. Because ..." / "A)" at the very start
]
_TIE_PATTERN = re.compile(
    r"^\W*(?:tie|draw|equal|equally good|both(?: are)? equally good|neither)\W*$"
    r"|(?:verdict|answer|decision)\s*(?:is|:)\s*(?:a\s+)?(?:tie|draw)\b"
    r"|\bit(?:'s| is) a (?:tie|draw)\b",
    re.IGNORECASE,
)


VERDICT_GRAMMAR = Grammar.regex(choice_regex(("A", "B", "tie")))
"""The text judge's reply under `constrained_output`: exactly one of the labels the prompt asks for."""


def parse_verdict(reply: str) -> Verdict | None:
    """The verdict a judge's reply states, or None when it states none or contradicts itself.

    Tolerant of wrapping ("Response B.", "[[A]]", "**A**", "The better response is B") but never
    guesses: a reply that only happens to start with the article "A" ("A good answer ...") is not
    read as a vote for A, and "A and B" is not read at all.
    """
    text = reply.strip().replace("*", "").replace("`", "").replace('"', "")
    if not text:
        return None
    first_line = text.splitlines()[0].strip()
    for candidate in (first_line, text):
        if _TIE_PATTERN.search(candidate):
            return "tie"
        for pattern in _VERDICT_PATTERNS:
            match = pattern.search(candidate)
            if match:
                label = match.group(1).upper()
                if label in ("C", "TIE"):
                    return "tie"
                if label in ("A", "B"):
                    return label  # type: ignore[return-value]
    return None


def candidate_outcome(verdict: Verdict | None, order: Order) -> str | None:
    """The verdict from the candidate's side: win, tie or loss (None when unparsed)."""
    if verdict is None:
        return None
    if verdict == "tie":
        return "tie"
    candidate_label = "A" if order == "candidate_first" else "B"
    return "win" if verdict == candidate_label else "loss"


# --- judging --------------------------------------------------------------------------------------


@dataclass
class JudgeRequest:
    """One judgment to make: a prompt, the two answers, and which order they are shown in."""

    key: str
    instruction: str
    candidate_answer: str
    baseline_answer: str
    order: Order

    @property
    def responses(self) -> tuple[str, str]:
        if self.order == "candidate_first":
            return self.candidate_answer, self.baseline_answer
        return self.baseline_answer, self.candidate_answer


@dataclass
class JudgeResult:
    key: str
    order: Order
    verdict: Verdict | None
    outcome: str | None
    """win, tie or loss for the candidate; None when every attempt was unparsed."""
    attempts: int
    replies: list[str]
    """Every reply the judge gave, the parsed one last (the text judge); the log-prob judge's most
    likely next tokens, as `token: probability` lines."""
    method: JudgeMethod = "text"
    candidate_preference: float | None = None
    """The candidate's score from this judgment in [0, 1]: 1, 0.5 or 0 from a parsed verdict; from
    log-probabilities P(candidate's label) + P(tie) / 2 over the verdict tokens' normalized mass."""
    verdict_probabilities: dict[str, float] | None = None
    """Log-prob judge: A, B and tie normalized to sum to 1."""
    verdict_mass: float | None = None
    """Log-prob judge: the share of the next-token distribution the verdict tokens hold before normalizing."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "order": self.order,
            "method": self.method,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "candidate_preference": self.candidate_preference,
            "verdict_probabilities": self.verdict_probabilities,
            "verdict_mass": self.verdict_mass,
            "attempts": self.attempts,
            "replies": self.replies,
        }


def verdict_from_logprobs(logprobs: TokenLogprobs) -> tuple[dict[str, float], float] | None:
    """The verdicts' normalized probabilities and their total mass, or None when no verdict token was reported.

    As AlpacaEval's `logprob_parser` (numerator / sum over the verdict tokens, a missing token
    counting as probability 0), with a third label, tie. Tokens are matched after stripping spaces.
    """
    mass = {label: 0.0 for label in VERDICT_TOKENS}
    for text, logprob in logprobs.items():
        stripped = text.strip()
        for label, texts in VERDICT_TOKENS.items():
            if stripped in texts and math.isfinite(logprob):
                mass[label] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {label: value / total for label, value in mass.items()}, total


def candidate_preference_from_probabilities(probabilities: dict[str, float], order: Order) -> float:
    """P(the candidate's label) + P(tie) / 2: the candidate's expected score under the judge's distribution."""
    candidate_label = "A" if order == "candidate_first" else "B"
    return probabilities[candidate_label] + probabilities["tie"] / 2


def judge_batch(
    config: JudgeConfig, backend: LLMBackend, requests: Sequence[JudgeRequest], *, seed: int = 0
) -> list[JudgeResult]:
    """Judge every request with the configured method (see the module docstring)."""
    if config.method == "logprob":
        return judge_batch_logprob(config, backend, requests)
    return judge_batch_text(config, backend, requests, seed=seed)


def judge_batch_logprob(
    config: JudgeConfig, backend: LLMBackend, requests: Sequence[JudgeRequest]
) -> list[JudgeResult]:
    """Read each judgment from the next-token distribution after the judge prompt (one forward pass each)."""
    if not supports_next_token_logprobs(backend):
        raise InvalidConfigError(
            f"the judge backend {getattr(backend, 'name', backend)!r} cannot report log-probabilities; "
            "choose the parsed-text judge"
        )
    conversations = [judge_conversation(config, r.instruction, *r.responses) for r in requests]
    always = tuple(text for texts in VERDICT_TOKENS.values() for text in texts)
    distributions = backend.chat_next_token_logprobs(conversations, top_k=LOGPROB_TOP_K, always_include=always)  # type: ignore[attr-defined]
    results = []
    for request, logprobs in zip(requests, distributions, strict=True):
        top = sorted(logprobs.items(), key=lambda item: item[1], reverse=True)[:5]
        shown = [f"{text!r}: {math.exp(value):.4f}" for text, value in top]
        read = verdict_from_logprobs(logprobs)
        verdict: Verdict | None = None
        preference = probabilities = mass = None
        if read is not None:
            probabilities, mass = read
            verdict = max(("A", "B", "tie"), key=lambda label: probabilities[label])  # type: ignore[assignment]
            preference = candidate_preference_from_probabilities(probabilities, request.order)
        results.append(
            JudgeResult(
                key=request.key,
                order=request.order,
                verdict=verdict,
                outcome=candidate_outcome(verdict, request.order),
                attempts=1,
                replies=["\n".join(shown)],
                method="logprob",
                candidate_preference=None if preference is None else round(preference, 6),
                verdict_probabilities=None
                if probabilities is None
                else {k: round(v, 6) for k, v in probabilities.items()},
                verdict_mass=None if mass is None else round(mass, 6),
            )
        )
    return results


def judge_batch_text(
    config: JudgeConfig, backend: LLMBackend, requests: Sequence[JudgeRequest], *, seed: int = 0
) -> list[JudgeResult]:
    """Ask the judge for a reply; unreadable replies are asked again, up to `config.retries` times."""
    conversations = [judge_conversation(config, r.instruction, *r.responses) for r in requests]
    replies: list[list[str]] = [[] for _ in requests]
    verdicts: list[Verdict | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    for attempt in range(config.retries + 1):
        if not pending:
            break
        sampling = config.sampling
        if attempt > 0:
            sampling = SamplingParams.from_dict(
                {
                    **config.sampling.to_dict(),
                    "n": 1,
                    "temperature": max(config.sampling.temperature, config.retry_temperature),
                    "seed": seed + 7919 * attempt,
                }
            )
        elif sampling.seed is None or sampling.n != 1:
            sampling = SamplingParams.from_dict({**sampling.to_dict(), "n": 1, "seed": seed})
        if config.constrained_output:
            sampling = replace(sampling, grammar=VERDICT_GRAMMAR)
        outputs = backend.chat([conversations[index] for index in pending], sampling)
        still_pending = []
        for index, completions in zip(pending, outputs, strict=True):
            text = completions[0].text if completions else ""
            replies[index].append(text)
            verdict = parse_verdict(text)
            if verdict is None:
                still_pending.append(index)
            else:
                verdicts[index] = verdict
        pending = still_pending
    return [
        JudgeResult(
            key=request.key,
            order=request.order,
            verdict=verdicts[index],
            outcome=candidate_outcome(verdicts[index], request.order),
            attempts=len(replies[index]),
            replies=replies[index],
            method="text",
            candidate_preference=_outcome_score(candidate_outcome(verdicts[index], request.order)),
        )
        for index, request in enumerate(requests)
    ]


def _outcome_score(outcome: str | None) -> float | None:
    return {"win": 1.0, "tie": 0.5, "loss": 0.0}.get(outcome) if outcome else None

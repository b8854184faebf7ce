"""The pairwise LLM judge: an AlpacaEval-style prompt with a rubric, both orders, tolerant verdict parsing, retries.

Every prompt is judged twice, once with the candidate's answer as output A and once as output B, so
a judge that prefers a position gives the candidate one win and one loss (a 50% preference) rather
than a false result. A reply whose verdict cannot be read is asked again (up to `retries` more
times, sampling with `retry_temperature` and a new seed so a greedy judge does not repeat itself);
one that still cannot be read is kept as `unparsed`, counted, shown, and left out of the statistics
of that order only.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.llm.types import Conversation, LLMBackend, SamplingParams

Verdict = Literal["A", "B", "tie"]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "sampling": self.sampling.to_dict(),
            "retries": self.retries,
            "retry_temperature": self.retry_temperature,
            "system_prompt": self.system_prompt,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeConfig:
        values = {key: value for key, value in data.items() if key in cls.__dataclass_fields__}
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
    re.compile(rf"(?:better|best|winning|preferred)\s+{_NOUN}\s*(?:is|:)?\s*{_NOUN}?\s*{_LABEL}(?![\w])", re.IGNORECASE),
    re.compile(rf"(?:verdict|answer|choice|decision|winner|better response)\s*(?:is|:)\s*{_NOUN}?\s*{_LABEL}(?![\w])", re.IGNORECASE),
    re.compile(rf"{_NOUN}\s*{_LABEL}\s+is\s+(?:better|the better|preferred|best)", re.IGNORECASE),
    re.compile(r"^\W*(A|B)\s*[.:)\n]"),  # "B. Because ..." / "A)" at the very start
]
_TIE_PATTERN = re.compile(
    r"^\W*(?:tie|draw|equal|equally good|both(?: are)? equally good|neither)\W*$"
    r"|(?:verdict|answer|decision)\s*(?:is|:)\s*(?:a\s+)?(?:tie|draw)\b"
    r"|\bit(?:'s| is) a (?:tie|draw)\b",
    re.IGNORECASE,
)


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
    """Every reply the judge gave, the parsed one last."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "order": self.order,
            "verdict": self.verdict,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "replies": self.replies,
        }


def judge_batch(
    config: JudgeConfig, backend: LLMBackend, requests: Sequence[JudgeRequest], *, seed: int = 0
) -> list[JudgeResult]:
    """Ask the judge about every request; unreadable replies are asked again, up to `config.retries` times."""
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
        )
        for index, request in enumerate(requests)
    ]

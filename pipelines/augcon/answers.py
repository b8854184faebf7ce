"""Answers with self-alignment (principles) and self-improvement (bootstrapped demonstrations).

The paper runs DSPy's `ChainOfThought` with a principles signature, compiled by `BootstrapFewShot`
(3 bootstrapped, 3 labeled demonstrations) with a yes/no metric asked of the same model. We do the
same without DSPy: the teacher answers each few-shot question with up to `max_labeled_demos` other
examples as demonstrations; an answer the model itself judges to match the reference becomes a
demonstration (with its reasoning), up to `max_bootstrapped_demos`; plain examples fill the rest.
The judge's reply is read by its first word (the paper's substring test counts "不是" as yes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.cst import CallStats, seed_for
from pipelines.augcon.prompts import (
    ANSWER_ONLY,
    ANSWER_PRINCIPLES,
    ANSWER_QUESTION,
    ANSWER_WITH_REASONING,
    JUDGE_PROMPT,
)
from pipelines.llm.grammar import Grammar, choice_regex
from pipelines.llm.types import Conversation, LLMBackend, SamplingParams

_ANSWER_LABEL = re.compile(r"(?:\*\*)?\s*answer\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?", re.IGNORECASE)
_REASONING_LABEL = re.compile(r"^\s*(?:\*\*)?\s*reasoning\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[A-Za-z]+|[是否]")


@dataclass(frozen=True)
class Demonstration:
    context: str
    question: str
    answer: str
    reasoning: str = ""
    """Empty for a plain (labeled) example; the model's reasoning for a bootstrapped one."""
    bootstrapped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParsedAnswer:
    reasoning: str
    answer: str


def parse_answer(text: str) -> ParsedAnswer:
    """Reasoning before the last "Answer:" label and the answer after it; no label: all of it is the answer."""
    labels = list(_ANSWER_LABEL.finditer(text))
    if not labels:
        return ParsedAnswer(reasoning="", answer=text.strip())
    last = labels[-1]
    reasoning = _REASONING_LABEL.sub("", text[: last.start()]).strip()
    return ParsedAnswer(reasoning=reasoning, answer=text[last.end() :].strip())


JUDGE_GRAMMAR = Grammar.regex(choice_regex(("yes", "no")))
"""The self-judge's reply under `constrained_output`: exactly "yes" or "no" (ours; the paper samples freely)."""


def parse_judgement(text: str) -> bool | None:
    """True for yes, False for no, None when the reply starts with neither."""
    match = _FIRST_WORD.search(text)
    if match is None:
        return None
    word = match.group(0).lower()
    if word in ("yes", "是"):
        return True
    if word in ("no", "否"):
        return False
    return None


def answer_conversation(context: str, question: str, demonstrations: Sequence[Demonstration]) -> Conversation:
    """System: the principles; earlier turns: the demonstrations; last turn: the question with its context."""
    conversation: Conversation = [{"role": "system", "content": ANSWER_PRINCIPLES}]
    for demo in demonstrations:
        conversation.append(
            {"role": "user", "content": ANSWER_QUESTION.format(context=demo.context, question=demo.question)}
        )
        reply = (
            ANSWER_WITH_REASONING.format(reasoning=demo.reasoning, answer=demo.answer)
            if demo.reasoning
            else ANSWER_ONLY.format(answer=demo.answer)
        )
        conversation.append({"role": "assistant", "content": reply})
    conversation.append({"role": "user", "content": ANSWER_QUESTION.format(context=context, question=question)})
    return conversation


def _answer_params(config: AugConConfig, seed: int) -> SamplingParams:
    return SamplingParams(n=1, temperature=config.answer_temperature, max_tokens=config.answer_max_tokens, seed=seed)


def answer_questions(
    backend: LLMBackend,
    items: Sequence[tuple[str, str]],
    demonstrations: Sequence[Demonstration] | Sequence[Sequence[Demonstration]],
    config: AugConConfig,
    stats: CallStats,
    *,
    seed_parts: tuple[Any, ...],
) -> list[ParsedAnswer]:
    """Answer (context, question) items; `demonstrations` is one list for all or one list per item."""
    per_item = bool(demonstrations) and not isinstance(demonstrations[0], Demonstration)
    answers: list[ParsedAnswer] = []
    for start in range(0, len(items), config.batch_size):
        batch = items[start : start + config.batch_size]
        conversations = [
            answer_conversation(
                context,
                question,
                demonstrations[start + offset] if per_item else demonstrations,  # type: ignore[arg-type]
            )
            for offset, (context, question) in enumerate(batch)
        ]
        outputs = backend.chat(conversations, _answer_params(config, seed_for(config.seed, *seed_parts, start)))
        for drawn in outputs:
            stats.calls += 1
            stats.prompt_tokens += drawn[0].prompt_tokens
            stats.completion_tokens += drawn[0].completion_tokens
            answers.append(parse_answer(drawn[0].text))
    return answers


def judge_answers(
    backend: LLMBackend, items: Sequence[dict[str, str]], config: AugConConfig, stats: CallStats
) -> list[tuple[bool | None, str]]:
    """Ask the model whether each predicted answer matches the reference: (verdict, raw reply) per item."""
    conversations: list[Conversation] = [[{"role": "user", "content": JUDGE_PROMPT.format(**item)}] for item in items]
    params = SamplingParams(
        n=1,
        temperature=config.judge_temperature,
        max_tokens=config.judge_max_tokens,
        seed=seed_for(config.seed, "judge"),
        grammar=JUDGE_GRAMMAR if config.constrained_output else None,
    )
    verdicts: list[tuple[bool | None, str]] = []
    for start in range(0, len(conversations), config.batch_size):
        outputs = backend.chat(conversations[start : start + config.batch_size], params)
        for drawn in outputs:
            stats.calls += 1
            stats.prompt_tokens += drawn[0].prompt_tokens
            stats.completion_tokens += drawn[0].completion_tokens
            verdict = parse_judgement(drawn[0].text)
            stats.parse_failures += 1 if verdict is None else 0
            verdicts.append((verdict, drawn[0].text))
    return verdicts


def bootstrap_demonstrations(
    backend: LLMBackend, examples: Sequence[dict[str, Any]], config: AugConConfig, stats: CallStats
) -> dict[str, Any]:
    """Self-improvement: the demonstrations every question is answered with, and the trace that chose them."""
    teacher_demos = []
    for index in range(len(examples)):
        others = [example for position, example in enumerate(examples) if position != index]
        teacher_demos.append(
            [Demonstration(o["context"], o["question"], o["answer"]) for o in others[: config.max_labeled_demos]]
        )
    bootstrapped: list[Demonstration] = []
    trace: list[dict[str, Any]] = []
    if config.max_bootstrapped_demos and examples:
        items = [(example["context"], example["question"]) for example in examples]
        predictions = answer_questions(backend, items, teacher_demos, config, stats, seed_parts=("bootstrap",))
        verdicts = judge_answers(
            backend,
            [
                {"context": e["context"], "question": e["question"], "reference": e["answer"], "predicted": p.answer}
                for e, p in zip(examples, predictions, strict=True)
            ],
            config,
            stats,
        )
        for position, (example, prediction, (verdict, reply)) in enumerate(
            zip(examples, predictions, verdicts, strict=True)
        ):
            chosen = bool(verdict) and bool(prediction.answer) and len(bootstrapped) < config.max_bootstrapped_demos
            if chosen:
                bootstrapped.append(
                    Demonstration(
                        example["context"], example["question"], prediction.answer, prediction.reasoning, True
                    )
                )
            trace.append(
                {
                    "position": position,
                    "question": example["question"],
                    "reference": example["answer"],
                    "predicted": prediction.answer,
                    "judge_reply": reply,
                    "verdict": {True: "yes", False: "no", None: "unclear"}[verdict],
                    "used": chosen,
                }
            )
    used_questions = {demo.question for demo in bootstrapped}
    labeled = [
        Demonstration(example["context"], example["question"], example["answer"])
        for example in examples
        if example["question"] not in used_questions
    ][: max(0, config.max_labeled_demos - len(bootstrapped))]
    return {"demonstrations": [demo.to_dict() for demo in bootstrapped + labeled], "trace": trace}

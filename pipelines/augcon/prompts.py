"""AugCon's prompts as named templates, written by us in English after the structure of the paper's.

- `CST_*`: the question-and-split completion prompt (plain text, not chat): an instruction, the
  output form, few-shot demonstrations separated by `---`, then the context and "Question: ".
  The full prompt makes the positives; three weaker variants (short instruction, one demonstration,
  both) make the scorer's negatives, as in the paper's `instruct_CST_instr`, `_fs` and `_instr_fs`.
- `ANSWER_*`: the self-alignment principles as the system message, demonstrations as earlier turns.
- `JUDGE_*`: the yes/no self-judging prompt used to bootstrap demonstrations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CST_INSTRUCTION = (
    "Given an entire context as the Context, write a Question about the entire context that a reader might "
    "ask and whose answer can be found directly in the Context. Then divide the entire context into two "
    "sub-contexts, Context 1 and Context 2, according to their meaning, adjusting each one where needed so "
    "that it can be read and understood on its own."
)
CST_SHORT_INSTRUCTION = "Given a context, write a question and split the context into two sub-contexts."
CST_FORMAT = (
    "---\n"
    "Answer in this form:\n"
    "Context: the entire context\n"
    "Question: a question about the entire context\n"
    "Context 1: the first sub-context\n"
    "Context 2: the second sub-context\n"
    "---\n"
)
CST_DEMONSTRATION = "Context: {context}\n\nQuestion: {question}\n\nContext 1: {context_1}\n\nContext 2: {context_2}\n---\n"
CST_QUERY = "Context: {context}\n\nQuestion: "
CST_STOP = ("\n\n---", "\n\n\n", "---")
"""The paper's stop strings (its `<|eot_id|>` is the model's end token, which every backend stops on)."""


@dataclass(frozen=True)
class CSTDemonstration:
    """One worked split: a context, a question about all of it, and its two sub-contexts."""

    context: str
    question: str
    context_1: str
    context_2: str


@dataclass(frozen=True)
class CSTVariant:
    """A question-and-split prompt: which instruction, and how many demonstrations."""

    name: str
    instruction: str
    demonstrations: int | None
    """None: all of the run's demonstrations; a number: at most that many."""
    description: str


FULL_VARIANT = CSTVariant("full", CST_INSTRUCTION, None, "full instruction and every demonstration (positives)")
NEGATIVE_VARIANTS = (
    CSTVariant("short_instruction", CST_SHORT_INSTRUCTION, None, "short instruction, every demonstration"),
    CSTVariant("one_shot", CST_INSTRUCTION, 1, "full instruction, one demonstration"),
    CSTVariant("short_instruction_one_shot", CST_SHORT_INSTRUCTION, 1, "short instruction, one demonstration"),
)


def cst_prompt(context: str, demonstrations: Sequence[CSTDemonstration], variant: CSTVariant = FULL_VARIANT) -> str:
    """The completion prompt asking for a question about `context` and its split in two."""
    shown = list(demonstrations) if variant.demonstrations is None else list(demonstrations)[: variant.demonstrations]
    parts = [variant.instruction, "\n", CST_FORMAT]
    parts.extend(
        CST_DEMONSTRATION.format(
            context=demo.context, question=demo.question, context_1=demo.context_1, context_2=demo.context_2
        )
        for demo in shown
    )
    parts.append(CST_QUERY.format(context=context))
    return "".join(parts)


ANSWER_PRINCIPLES = (
    "Given a context and a question, answer the question. Follow these principles.\n"
    "Principles\n"
    "1. Use the context to answer the question accurately and without error.\n"
    "2. Answer the way a knowledgeable person would answer it.\n"
    "3. Do not give answers that are unethical.\n"
    "First write your reasoning after \"Reasoning:\", then your answer after \"Answer:\"."
)
ANSWER_QUESTION = "Context: {context}\n\nQuestion: {question}"
ANSWER_WITH_REASONING = "Reasoning: {reasoning}\nAnswer: {answer}"
ANSWER_ONLY = "Answer: {answer}"

JUDGE_PROMPT = (
    "Decide whether the predicted answer answers the question correctly, given the context and the reference "
    "answer. Reply with yes or no only.\n\n"
    "[Context]: {context}\n"
    "[Question]: {question}\n"
    "[Reference answer]: {reference}\n"
    "[Predicted answer]: {predicted}\n"
    "[yes/no]: "
)

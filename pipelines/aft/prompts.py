"""The two roles' prompts, as the official code writes them (Linzwcs/AFT, src/openmoa/net.py).

The released AFT checkpoints were trained on these exact strings, so they are reproduced byte for
byte, including the odd "\n    \n    " that the Mixture-of-Agents source's indentation left inside
the aggregator instruction.
"""
from __future__ import annotations

from collections.abc import Sequence

from pipelines.llm.types import Conversation

PROPOSER_SYSTEM = "\n"
"""The proposer's system message: one newline (the original overwrites any caller system prompt)."""

AGG_TEMPLATE = (
    "You are a helpful aggregator.\n"
    "You have been provided with a set of responses from various open-source models to the latest user query. "
    "Your task is to synthesize these responses into a single, high-quality response. "
    "It is crucial to critically evaluate the information provided in these responses, recognizing that some of it "
    "may be biased or incorrect. Your response should not simply replicate the given answers but should offer a "
    "refined, accurate, and comprehensive reply to the instruction. Ensure your response is well-structured, "
    "coherent, and adheres to the highest standards of accuracy and reliability.\n    \n    Responses from models:"
)
"""The aggregator instruction; the numbered previous responses follow it after one newline."""


def numbered_responses(responses: Sequence[str]) -> str:
    """"1. <first>\\n2. <second>..." with no stripping, as the original joins them."""
    return "\n".join(f"{index}. {response}" for index, response in enumerate(responses, start=1))


def aggregator_system(responses: Sequence[str]) -> str:
    """The aggregator's system message: the instruction, a newline, then the numbered responses."""
    return AGG_TEMPLATE + "\n" + numbered_responses(responses)


def proposer_conversation(query: str) -> Conversation:
    return [{"role": "system", "content": PROPOSER_SYSTEM}, {"role": "user", "content": query}]


def aggregator_conversation(query: str, responses: Sequence[str]) -> Conversation:
    """The user's message stays the query; the drafts go in the system message."""
    return [{"role": "system", "content": aggregator_system(responses)}, {"role": "user", "content": query}]

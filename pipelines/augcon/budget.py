"""What an AugCon config asks of the model, estimated before the run from the texts alone (no torch).

Token counts use 4 characters per token (English; Chinese is closer to 1.5). "Expected" assumes every
output parses, so each question costs one call; "worst case" is a model that never follows the format:
every chunk then spends `max_rounds_per_chunk` x `max_attempts` calls on its root and finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import chunk_text, cst_demonstrations
from pipelines.augcon.prompts import ANSWER_PRINCIPLES, JUDGE_PROMPT, NEGATIVE_VARIANTS, cst_prompt

CHARACTERS_PER_TOKEN = 4
SPLIT_OUTPUT_OVERHEAD_CHARACTERS = 60
"""Labels and the question, beyond the two rewritten sub-contexts (about as long as the context)."""


@dataclass(frozen=True)
class Budget:
    documents: int
    chunks: int
    question_quota: int
    """Questions kept at most (sum of gen_count)."""
    question_target: int
    """Questions generated before ranking (gen_count x over_generation)."""
    cst_calls_expected: int
    cst_calls_worst_case: int
    negative_calls: int
    bootstrap_calls: int
    answer_calls: int
    scorer_steps: int
    model_calls_expected: int
    prompt_tokens_expected: int
    completion_tokens_expected: int
    completion_tokens_at_most: int
    """With every call using its whole max_tokens."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tokens(characters: float) -> int:
    return int(characters / CHARACTERS_PER_TOKEN) + 1


def estimate_budget(config: AugConConfig, texts: Sequence[str], few_shot: Sequence[dict[str, Any]]) -> Budget:
    """Calls and tokens of a run over `texts` with the QA few-shot set `few_shot`."""
    chunks: list[str] = []
    for text in texts:
        found = chunk_text(text, max_length=config.chunk_characters, min_paragraph_length=config.paragraph_characters)
        chunks.extend(found[: config.max_chunks_per_document] if config.max_chunks_per_document else found)
    quota = sum(config.gen_count(chunk) for chunk in chunks)
    target = sum(config.question_target(chunk) for chunk in chunks)
    demos = cst_demonstrations(list(few_shot), config.cst_demonstrations)
    prompt_overhead = len(cst_prompt("", demos))
    # Questions are spread over the tree: the root's context is a chunk, deeper ones are shorter.
    average_context = (sum(len(chunk) for chunk in chunks) / len(chunks)) / 2 if chunks else 0
    split_prompt = _tokens(prompt_overhead + average_context)
    split_output = min(config.question_max_tokens, _tokens(average_context * 1.1 + SPLIT_OUTPUT_OVERHEAD_CHARACTERS))

    negatives = len(NEGATIVE_VARIANTS) * min(config.negatives_per_variant, target // 3)
    example_count = len(few_shot)
    bootstrap = 2 * example_count if config.max_bootstrapped_demos else 0
    demo_characters = sum(len(e["context"]) + len(e["question"]) + 2 * len(e["answer"]) for e in few_shot[:3])
    answer_prompt = _tokens(len(ANSWER_PRINCIPLES) + demo_characters + average_context + 80)
    judge_prompt = _tokens(len(JUDGE_PROMPT) + demo_characters / 3)
    pairs = negatives
    epochs_steps = -(-pairs // config.scorer.per_device_batch_size) * config.scorer.num_epochs if pairs else 0
    scorer_steps = config.scorer.max_steps if config.scorer.max_steps > 0 else int(epochs_steps)
    if pairs < config.min_scorer_pairs:
        scorer_steps = 0

    calls = target + negatives + bootstrap + quota
    prompt_tokens = (target + negatives) * split_prompt + (example_count + quota) * answer_prompt
    prompt_tokens += example_count * judge_prompt if bootstrap else 0
    answer_output = min(config.answer_max_tokens, 120)
    completion_tokens = (target + negatives) * split_output + (example_count + quota) * answer_output
    at_most = (target + negatives) * config.question_max_tokens + (example_count + quota) * config.answer_max_tokens
    if bootstrap:
        completion_tokens += example_count * 2
        at_most += example_count * config.judge_max_tokens
    return Budget(
        documents=len(texts),
        chunks=len(chunks),
        question_quota=quota,
        question_target=target,
        cst_calls_expected=target,
        cst_calls_worst_case=len(chunks) * config.max_rounds_per_chunk * config.max_attempts,
        negative_calls=negatives,
        bootstrap_calls=bootstrap,
        answer_calls=quota,
        scorer_steps=scorer_steps,
        model_calls_expected=calls,
        prompt_tokens_expected=prompt_tokens,
        completion_tokens_expected=completion_tokens,
        completion_tokens_at_most=at_most,
    )

"""Step pg (prompt generation): write new user prompts by showing a model a few seed (and already accepted) prompts.

Each model call is a round of `batch_size` candidates, saved with every candidate's verdict as
`pg/rounds/round-NNNNNN.jsonl`; a resumed run replays the saved rounds (so the in-context pool and
the novelty index are what they were) and goes on with the next round. `pg/prompts.jsonl` appears
when the step is done.
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

from pipelines.almost.config import PromptGenerationConfig
from pipelines.almost.dedup import NoveltyIndex
from pipelines.almost.prompts import AlmostInputs, extract_query, prompt_generation_text
from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError
from pipelines.llm.grammar import Grammar, structured_output_mode
from pipelines.llm.types import LLMBackend, SamplingParams

PG_PROMPTS_FILE = "pg/prompts.jsonl"
PG_SUMMARY_FILE = "pg/summary.json"
ACCEPTED = "accepted"
PUNCTUATION = tuple(string.punctuation)
"""Endings that exempt a short prompt from "too_short": every ASCII punctuation mark, as the original's check_bad."""


def _round_name(index: int) -> str:
    return f"pg/rounds/round-{index:06d}.jsonl"


def length_verdict(prompt: str, config: PromptGenerationConfig) -> str | None:
    """ "empty", "too_short" (short and not ending in punctuation, as the original) or "too_long"; None if fine."""
    if not prompt:
        return "empty"
    if len(prompt) < config.min_chars and not prompt.endswith(PUNCTUATION):
        return "too_short"
    # The original's long test reads `not p[-1] not in punctuation`, rejecting long prompts that *do*
    # end properly; we reject every prompt over max_chars, finished or not.
    if len(prompt) > config.max_chars:
        return "too_long"
    return None


def query_grammar(config: PromptGenerationConfig) -> Grammar:
    """The reply after the prompt's closing "Query:": a space, then one line of 1 to `max_chars`
    characters that does not start with a blank, then the line break the stop string cuts."""
    return Grammar.regex(rf" ?[^\s][^\n]{{0,{config.max_chars - 1}}}\n?")


def generate_prompts(
    config: PromptGenerationConfig,
    inputs: AlmostInputs,
    backend: LLMBackend,
    store: RunStore,
    progress: Progress,
    *,
    embedder_loader: Callable[[], Any] | None = None,
) -> list[dict[str, Any]]:
    """`num_generation` new prompts as `{"prompt_id", "prompt"}` rows, none equal or near to a seed or another."""
    if store.exists(PG_PROMPTS_FILE):
        return list(store.read_jsonl(PG_PROMPTS_FILE))
    embedder = None
    if config.embedding_threshold is not None:
        if embedder_loader is None:
            from pipelines.llm.embedded import load_embedder

            embedder_loader = load_embedder
        embedder = embedder_loader()
    index = NoveltyIndex(
        rouge_l_threshold=config.rouge_l_threshold, embedding_threshold=config.embedding_threshold, embedder=embedder
    )
    index.add(inputs.seed_prompts)
    pool = list(inputs.seed_prompts)
    accepted: list[str] = []
    verdicts: Counter[str] = Counter()
    round_index = 0
    while store.exists(_round_name(round_index)):  # replay finished rounds
        rows = list(store.read_jsonl(_round_name(round_index)))
        new = [row["prompt"] for row in rows if row["verdict"] == ACCEPTED]
        verdicts.update(row["verdict"] for row in rows)
        index.add(new)
        pool.extend(new)
        accepted.extend(new)
        round_index += 1
    progress.stage("pg · prompts", total=config.num_generation, done=min(len(accepted), config.num_generation))
    if round_index:
        progress.log(f"pg: resuming after {round_index} finished rounds ({len(accepted)} prompts kept)")
    grammar = query_grammar(config) if config.constrained_output else None
    progress.log(f"pg: structured output: {structured_output_mode(backend, grammar)}")

    candidate_cap = config.num_generation * config.max_candidates_per_prompt
    while len(accepted) < config.num_generation and sum(verdicts.values()) < candidate_cap:
        progress.check_cancelled()
        rows = _run_round(
            config, inputs.instruction, backend, pool, index, round_index, config.num_generation - len(accepted)
        )
        store.write_jsonl(rows, _round_name(round_index))
        new = [row["prompt"] for row in rows if row["verdict"] == ACCEPTED]
        verdicts.update(row["verdict"] for row in rows)
        accepted.extend(new)
        progress.advance(len(new))
        round_index += 1

    candidates = sum(verdicts.values())
    if not accepted:
        raise InvalidInputError(
            f"prompt generation kept no prompt out of {candidates} candidates "
            f"(rejections: {dict(verdicts)}); loosen the filters or use a stronger prompt model"
        )
    if len(accepted) < config.num_generation:
        progress.log(
            f"pg: stopped at {len(accepted)} of {config.num_generation} prompts after {candidates} candidates "
            f"(max_candidates_per_prompt {config.max_candidates_per_prompt}); continuing with those"
        )
    prompts = [{"prompt_id": f"g{position:06d}", "prompt": text} for position, text in enumerate(accepted)]
    summary = {
        "prompts": len(prompts),
        "requested": config.num_generation,
        "candidates": candidates,
        "rounds": round_index,
        # A reply with no query line: what the grammar rules out under constrained_output.
        "parse_failures": verdicts.get("empty", 0),
        "constrained_output": config.constrained_output,
        "rejected": {reason: count for reason, count in sorted(verdicts.items()) if reason != ACCEPTED},
    }
    store.write_json(summary, PG_SUMMARY_FILE)
    store.write_jsonl(prompts, PG_PROMPTS_FILE)
    return prompts


def _run_round(
    config: PromptGenerationConfig,
    instruction: str,
    backend: LLMBackend,
    pool: list[str],
    index: NoveltyIndex,
    round_index: int,
    still_needed: int,
) -> list[dict[str, Any]]:
    """One model call of `batch_size` few-shot texts; verdicts are decided in order, so a round cannot repeat itself."""
    rng = random.Random(config.seed * 1_000_003 + round_index)
    contexts = [rng.sample(pool, min(config.in_context, len(pool))) for _ in range(config.batch_size)]
    sampling = SamplingParams(
        n=1,
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed + round_index,
        stop=("\n",),
        grammar=query_grammar(config) if config.constrained_output else None,
    )
    outputs = backend.complete([prompt_generation_text(instruction, examples) for examples in contexts], sampling)
    rows: list[dict[str, Any]] = []
    for position, (examples, completions) in enumerate(zip(contexts, outputs, strict=True)):
        text = extract_query(completions[0].text)
        score: float | None = None
        verdict = length_verdict(text, config)
        if verdict is None:
            rejection = index.rejection(text)
            if rejection is not None:
                verdict, score = rejection
        if verdict is None:
            if still_needed > 0:
                verdict = ACCEPTED
                still_needed -= 1
                index.add([text])
                pool.append(text)
            else:
                verdict = "not_needed"
        rows.append(
            {
                "round": round_index,
                "candidate": position,
                "prompt": text,
                "verdict": verdict,
                "score": score,
                "in_context": examples,
            }
        )
    return rows

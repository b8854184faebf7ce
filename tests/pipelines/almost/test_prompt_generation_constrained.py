"""ALMoST's prompt generation under `constrained_output`: every candidate of a random-weight model is one
query line within max_chars, so none is rejected as empty or too long."""

from __future__ import annotations

import re

import pytest

from pipelines.almost.config import PromptGenerationConfig
from pipelines.almost.prompt_generation import generate_prompts, query_grammar
from pipelines.almost.prompts import AlmostInputs
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidInputError

SEEDS = ["How do I reverse a list in Python?", "Why is the sky blue during the day?", "Suggest a name for a bakery."]


def _config(constrained: bool) -> PromptGenerationConfig:
    return PromptGenerationConfig(
        num_generation=3,
        in_context=2,
        max_tokens=24,
        batch_size=4,
        min_chars=0,
        max_chars=40,
        rouge_l_threshold=None,
        embedding_threshold=None,
        max_candidates_per_prompt=2,
        constrained_output=constrained,
        seed=3,
    )


def _candidates(tmp_path, backend_pool, tiny_spec, constrained: bool):  # type: ignore[no-untyped-def]
    store = RunStore(tmp_path / str(constrained))
    generate_prompts(
        _config(constrained), AlmostInputs(seed_prompts=SEEDS), backend_pool.load(tiny_spec), store, RecordingProgress()
    )
    rows = [
        row
        for path in sorted(store.path("pg", "rounds").iterdir())
        for row in RunStore(path.parent).read_jsonl(path.name)
    ]
    return rows, store.read_json("pg/summary.json")


def test_constrained_candidates_are_never_empty_or_too_long(tmp_path, backend_pool, tiny_spec):
    rows, summary = _candidates(tmp_path, backend_pool, tiny_spec, constrained=True)
    assert rows and {row["verdict"] for row in rows} <= {"accepted", "exact", "not_needed"}, rows
    assert all(0 < len(row["prompt"]) <= 40 for row in rows)
    assert summary["parse_failures"] == 0 and summary["constrained_output"] is True


def test_unconstrained_candidates_of_a_random_model_overflow_max_chars(tmp_path, backend_pool, tiny_spec):
    with pytest.raises(InvalidInputError, match="too_long"):
        _candidates(tmp_path, backend_pool, tiny_spec, constrained=False)


def test_the_query_grammar_is_one_line_of_at_most_max_chars():
    pattern = re.compile(query_grammar(_config(True)).source)
    assert pattern.fullmatch(" What is a set?\n") and pattern.fullmatch("x" * 40)
    assert not pattern.fullmatch("x" * 41) and not pattern.fullmatch(" ") and not pattern.fullmatch(" a\nb")

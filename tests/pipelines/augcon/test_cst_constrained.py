"""AugCon under `constrained_output`: every question-and-split reply and every self-judge verdict parses."""

from __future__ import annotations

import re

import pytest

from pipelines.augcon.answers import JUDGE_GRAMMAR, judge_answers
from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import cst_demonstrations, document_chunks
from pipelines.augcon.cst import CallStats, build_document_trees, cst_grammar, parse_cst
from pipelines.common.progress import RecordingProgress

from .conftest import FEW_SHOT

SHORT_DOCUMENT = {
    "document_id": "pass",
    "text": "The pass statement is a null operation: nothing happens when it runs. "
    "It is a placeholder where a statement is required.",
}


def test_every_reply_the_cst_grammar_allows_parses_into_a_question_and_two_sub_contexts():
    config = AugConConfig(question_max_tokens=64, min_question_length=5)
    pattern = re.compile(cst_grammar(config).source)
    replies = [
        "What is pass?\n\nContext 1: The pass statement does nothing.\n\nContext 2: It is a placeholder.",
        "Why?? ok\n\nContext 1: a\n\nContext 2: b\n",
        "What does context 1: mean\n\nContext 1: x\n\nContext 2: y",
    ]
    for reply in replies:
        assert pattern.fullmatch(reply), reply
        parsed = parse_cst(reply)
        assert parsed.ok or parsed.error == "empty question", (reply, parsed)
    # The question's bounds keep "Context 2:" within the token budget; a longer question is not allowed.
    assert not pattern.fullmatch("Q" * 200 + "\n\nContext 1: a\n\nContext 2: b")
    assert not pattern.fullmatch("Hi\n\nContext 1: a\n\nContext 2: b")  # shorter than min_question_length


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", batch_size=8, torch_threads=2)
    yield backend
    backend.close()


def _judge_items() -> list[dict[str, str]]:
    return [
        {"context": example["context"], "question": example["question"], "reference": example["answer"], "predicted": p}
        for example in FEW_SHOT[:3]
        for p in (example["answer"], "I do not know.")
    ]


def test_the_constrained_self_judge_of_a_random_model_always_says_yes_or_no(tiny_backend):
    stats = CallStats()
    verdicts = judge_answers(tiny_backend, _judge_items(), AugConConfig(), stats)
    assert [reply for _verdict, reply in verdicts if reply not in ("yes", "no")] == []
    assert all(verdict is not None for verdict, _reply in verdicts) and stats.parse_failures == 0
    assert JUDGE_GRAMMAR.source == "(yes|no)"


def test_the_unconstrained_self_judge_of_a_random_model_fails_to_parse_and_counts_it(tiny_backend):
    stats = CallStats()
    verdicts = judge_answers(tiny_backend, _judge_items(), AugConConfig(constrained_output=False), stats)
    unparsed = sum(1 for verdict, _reply in verdicts if verdict is None)
    assert unparsed > 0 and stats.parse_failures == unparsed


@pytest.mark.slow
def test_the_bundled_model_splits_with_no_parse_failure_under_the_grammar(embedded_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    config = AugConConfig(
        length_scale=3.4,
        min_paragraph_length=0,
        max_rounds_per_chunk=1,
        max_attempts=1,
        question_max_tokens=64,
        cst_demonstrations=3,
        seed=1,
    )
    chunks = document_chunks(SHORT_DOCUMENT, config)
    backend = TransformersBackend(embedded_model_dir, device="cpu", torch_threads=2)
    try:
        trees = build_document_trees(backend, chunks, cst_demonstrations(FEW_SHOT, 3), config, RecordingProgress())
    finally:
        backend.close()
    assert trees.stats.calls >= 1
    assert trees.stats.parse_failures == 0 and trees.stats.gave_up == 0
    root = trees.nodes[0]
    assert root.status == "question" and len(root.question) >= config.min_question_length
    for node in trees.nodes[1:]:
        assert node.grounding is not None and 0.0 <= node.grounding <= 1.0
        assert node.status in ("question", "ungrounded", "leaf", "short_question")

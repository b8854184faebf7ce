"""AugCon's mechanics on the tiny random model, whose output is noise: the parser fails, so failures are
counted and retried, the outer loop stops at its cap, and the run still finishes; resume re-asks nothing."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import cst_demonstrations, document_chunks
from pipelines.augcon.cst import build_document_trees
from pipelines.augcon.files import cst_file
from pipelines.augcon.run import build_trees, document_groups
from pipelines.common.progress import RecordingProgress
from pipelines.errors import InvalidInputError, RunCancelled

from .conftest import DOCUMENTS, FEW_SHOT, CountingBackend, artifact, run_on, seeded_store


def tiny_config(**overrides) -> AugConConfig:
    values = dict(
        length_scale=0.5,
        max_rounds_per_chunk=1,
        max_attempts=2,
        question_max_tokens=8,
        answer_max_tokens=8,
        judge_max_tokens=2,
        batch_size=8,
        seed=7,
        cst_demonstrations=1,
        max_chunks_per_document=1,
    )
    values.update(overrides)
    return AugConConfig(**values)


def test_noise_fails_to_parse_every_failure_is_counted_and_retried_and_rounds_stop_at_the_cap(tiny_backend):
    config = tiny_config(max_rounds_per_chunk=2, max_chunks_per_document=0)
    chunks = document_chunks(DOCUMENTS[0], config)
    assert chunks and all(chunk.target > 0 for chunk in chunks)
    counting = CountingBackend(tiny_backend)
    trees = build_document_trees(counting, chunks, cst_demonstrations(FEW_SHOT, 3), config, RecordingProgress())
    roots = [node for node in trees.nodes if node.depth == 0]
    assert len(roots) == len(chunks) * config.max_rounds_per_chunk  # every round found nothing, so all rounds ran
    assert all(node.status == "parse_failed" and node.attempts == config.max_attempts and node.raw for node in roots)
    calls = len(chunks) * config.max_rounds_per_chunk * config.max_attempts
    assert len(counting.completion_prompts) == trees.stats.calls == calls
    assert trees.stats.parse_failures == calls and trees.stats.gave_up == len(roots)
    assert trees.stats.retries == calls - len(roots)
    assert trees.stats.completion_tokens > 0


def test_a_run_on_noise_finishes_and_a_resumed_run_reasks_nothing_finished_and_gives_the_same_rows(
    tmp_path, tiny_backend
):
    # Retries are covered above; each generate call costs seconds. batch_size=1 puts each document in
    # a group of its own, so the stop falls between the two documents' trees.
    config = tiny_config(max_attempts=1, batch_size=1)
    uninterrupted = seeded_store(tmp_path / "whole")
    result = run_on(config, tiny_backend, uninterrupted, RecordingProgress())
    summary = result.summary
    assert summary["documents"] == 2 and summary["questions_generated"] == 0 and summary["sft_rows"] == 0
    assert summary["parse_failures"] == summary["cst_calls"] == 2 and summary["retries"] == 0
    assert summary["scorer_skipped"] == "no local scorer model was given"
    assert summary["bootstrap_calls"] == 2 * 3  # 3 answers and 3 yes/no judgements
    assert summary["demos"] == 3 and summary["bootstrapped_demos"] == 0  # filled with plain examples
    assert artifact(result, "sft").jsonl_path.read_text() == "" and artifact(result, "sft").parquet_path.is_file()
    assert json.loads(uninterrupted.path("summary.json").read_text())["cst_calls"] == summary["cst_calls"]

    store = seeded_store(tmp_path / "stopped")
    first = CountingBackend(tiny_backend)
    with pytest.raises(RunCancelled):
        run_on(config, first, store, RecordingProgress(cancel_after=1))
    assert store.exists(cst_file("while")) and not store.exists(cst_file("pass"))
    finished_contexts = {node["context"] for node in store.read_json(cst_file("while"))["nodes"]}

    second = CountingBackend(tiny_backend)
    run_on(config, second, store, RecordingProgress())
    asked_again = [prompt for prompt in second.completion_prompts if any(c in prompt for c in finished_contexts)]
    assert not asked_again, "the finished document was asked again"
    for name in ("cst/while.json", "cst/pass.json"):
        assert store.read_json(name)["nodes"] == uninterrupted.read_json(name)["nodes"]
    assert store.path("queries.jsonl").read_text() == uninterrupted.path("queries.jsonl").read_text()

    third = CountingBackend(tiny_backend)
    run_on(config, third, store, RecordingProgress())
    assert not third.completion_prompts and not third.chat_conversations  # a finished run asks nothing


def test_bad_inputs_are_refused_naming_the_file_and_line(tmp_path, tiny_backend):
    store = seeded_store(
        tmp_path / "a", documents=[{"document_id": "x", "text": "t"}, {"document_id": "x", "text": "u"}]
    )
    with pytest.raises(InvalidInputError, match="documents.jsonl, line 2: duplicate document_id"):
        run_on(tiny_config(), tiny_backend, store, RecordingProgress())
    store = seeded_store(tmp_path / "b", few_shot=[{"context": "c", "question": "", "answer": "a"}])
    with pytest.raises(InvalidInputError, match="fewshot.jsonl, line 1: field `question`"):
        run_on(tiny_config(), tiny_backend, store, RecordingProgress())
    one_sentence = [dict(example, context="No split here") for example in FEW_SHOT[:2]]
    store = seeded_store(tmp_path / "c", few_shot=one_sentence)
    with pytest.raises(InvalidInputError, match="two or more sentences"):
        run_on(tiny_config(), tiny_backend, store, RecordingProgress())
    assert not store.exists("chunks.jsonl") or not store.exists("cst")


def test_gen_count_caps_what_ranking_keeps_per_chunk(tmp_path, tiny_backend):
    """Trees on disk (as if CST had finished) with more questions than the quota: ranking keeps gen_count."""
    config = tiny_config(max_bootstrapped_demos=0)
    store = seeded_store(tmp_path / "run", documents=[DOCUMENTS[1]])
    chunk = document_chunks(DOCUMENTS[1], config)[0]
    questions = [f"Question number {index} about {word}?" for index, word in enumerate("abcdefghijklmnopqrstuvwxyz")]
    nodes = [
        {
            "node_id": f"{chunk.chunk_id}-r0-{index}",
            "chunk_id": chunk.chunk_id,
            "document_id": "pass",
            "round": 0,
            "depth": 0,
            "parent_id": None,
            "context": chunk.text,
            "question": question,
            "status": "question",
            "reason": "",
            "attempts": 1,
            "raw": "",
            "children": [],
        }
        for index, question in enumerate(questions[: chunk.target + 3])
    ]
    store.write_json(
        {
            "document_id": "pass",
            "nodes": nodes,
            "stats": {"calls": len(nodes)},
            "rounds_by_chunk": {},
            "questions_by_chunk": {},
        },
        cst_file("pass"),
    )
    config = replace(config, negatives_per_variant=0)
    result = run_on(config, tiny_backend, store, RecordingProgress())
    rows = [json.loads(line) for line in artifact(result, "queries").jsonl_path.read_text().splitlines()]
    kept = [row for row in rows if row["kept"]]
    assert len(kept) == chunk.gen_count < len(rows)
    assert [row["query_id"] for row in kept] == [node["node_id"] for node in nodes[: chunk.gen_count]]
    assert all("quota" in row["drop_reason"] for row in rows if not row["kept"])
    assert result.summary["answer_calls"] == chunk.gen_count


def test_documents_share_calls_in_groups_that_fill_a_batch_and_keep_their_own_trees_and_counts(tmp_path, tiny_backend):
    config = tiny_config(max_attempts=2, batch_size=8)
    chunks_by_document = {document["document_id"]: document_chunks(document, config) for document in DOCUMENTS}
    assert [len(chunks) for chunks in chunks_by_document.values()] == [1, 1]
    assert document_groups(chunks_by_document, 8) == [["while", "pass"]]
    assert document_groups({f"d{i}": [object()] * size for i, size in enumerate([3, 4, 2, 5, 9])}, 8) == [
        ["d0", "d1"],
        ["d2", "d3"],
        ["d4"],  # a document larger than a batch is a group of its own
    ]

    store = seeded_store(tmp_path / "run")
    counting = CountingBackend(tiny_backend)
    demonstrations = cst_demonstrations(FEW_SHOT, 1)
    build_trees(config, counting, store, RecordingProgress(), chunks_by_document, demonstrations)
    assert counting.completion_calls == [2, 2], "both documents' roots go in one call, and so do their retries"
    records = {document_id: store.read_json(cst_file(document_id)) for document_id in chunks_by_document}
    for document_id, record in records.items():
        assert {node["document_id"] for node in record["nodes"]} == {document_id}
        assert record["stats"]["calls"] == 2 and record["grown_with"] == ["while", "pass"]

    # A group cut short between its files is grown again whole: the same seeds give the same tree,
    # and the file that was written is left alone.
    kept = store.path(cst_file("while")).stat().st_mtime_ns
    store.path(cst_file("pass")).unlink()
    again = CountingBackend(tiny_backend)
    build_trees(config, again, store, RecordingProgress(), chunks_by_document, demonstrations)
    assert again.completion_calls == [2, 2]
    assert store.read_json(cst_file("pass"))["nodes"] == records["pass"]["nodes"]
    assert store.path(cst_file("while")).stat().st_mtime_ns == kept


def test_answers_are_greedy_as_dspys_default_and_only_the_judge_samples_at_0_2(tiny_backend):
    from pipelines.augcon.answers import answer_questions, bootstrap_demonstrations
    from pipelines.augcon.cst import CallStats

    config = tiny_config(answer_max_tokens=6, max_labeled_demos=1)
    counting = CountingBackend(tiny_backend)
    bootstrap_demonstrations(counting, FEW_SHOT[:2], config, CallStats())
    answer_params, judge_params = counting.chat_params
    assert (answer_params.temperature, answer_params.max_tokens) == (0.0, config.answer_max_tokens)
    assert (judge_params.temperature, judge_params.max_tokens) == (0.2, config.judge_max_tokens)

    # Greedy answers do not depend on the seed: the same question answered under two seeds reads the same.
    item = [(FEW_SHOT[0]["context"], FEW_SHOT[0]["question"])]
    first = answer_questions(tiny_backend, item, [], config, CallStats(), seed_parts=("a",))
    second = answer_questions(tiny_backend, item, [], replace(config, seed=8), CallStats(), seed_parts=("b",))
    assert first == second

"""The contrastive scorer on the tiny model: its loss, a few training steps, scoring, and the stages after it."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import document_chunks
from pipelines.augcon.files import cst_file, negatives_file
from pipelines.augcon.prompts import NEGATIVE_VARIANTS
from pipelines.augcon.scorer import QueryScorer, contrastive_loss, train_scorer
from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.training.arguments import LoraSettings, TrainingArgs

from .conftest import DOCUMENTS, artifact, run_on, seeded_store

CONTEXT = DOCUMENTS[1]["text"]
GOOD = ["What happens when pass is executed?", "Why is pass useful as a placeholder?", "Is pass a null operation?",
        "Where is the pass statement required?"]
BAD = ["zzz qq", "blue blue blue", "x", "lorem ipsum"]


def scorer_args(**overrides) -> TrainingArgs:
    values = dict(
        learning_rate=5e-3, max_steps=6, per_device_batch_size=2, save_steps=3, max_length=96, max_prompt_length=64,
        lr_scheduler="constant", device="cpu", dtype="float32", torch_threads=1, seed=1,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0), trainer_overrides={"warmup_steps": 0},
    )
    values.update(overrides)
    return TrainingArgs(**values)


def test_the_loss_is_mean_negative_score_minus_mean_positive_score():
    positive = torch.tensor([0.9, 0.7])
    negative = torch.tensor([0.2, 0.4, 0.0])
    assert contrastive_loss(positive, negative).item() == pytest.approx(0.2 - 0.8)
    assert contrastive_loss(negative, positive).item() == pytest.approx(0.8 - 0.2)


def test_a_few_steps_lower_the_loss_and_the_scorer_prefers_the_positives(tmp_path, tiny_model_dir):
    pairs = [{"context": CONTEXT, "pos_query": good, "neg_query": bad} for good, bad in zip(GOOD, BAD, strict=True)]
    progress = RecordingProgress()
    store = RunStore(tmp_path / "scorer")
    result = train_scorer(scorer_args(), tiny_model_dir, pairs, store, progress)
    losses = [row["loss"] for row in progress.metric_rows if "loss" in row]
    assert result.steps == 6 and len(losses) >= 3
    assert losses[-1] < losses[0], losses
    assert store.exists("checkpoints") and store.exists("final", "result.json") and result.adapter_dir
    scorer = QueryScorer(tiny_model_dir, result, batch_size=3, max_length=96)
    scores = scorer.score([CONTEXT] * 8, GOOD + BAD)
    assert all(0.0 < score < 1.0 for score in scores)
    assert sum(scores[:4]) > sum(scores[4:])
    again = train_scorer(scorer_args(), tiny_model_dir, pairs, store, RecordingProgress())  # finished: nothing retrained
    assert again == result


def test_trees_and_negatives_on_disk_train_the_scorer_rank_by_score_and_export_sft_rows(tmp_path, tiny_model_dir, tiny_backend):
    config = AugConConfig(
        length_scale=0.5, max_chunks_per_document=1, answer_max_tokens=8, judge_max_tokens=2, max_bootstrapped_demos=0,
        min_scorer_pairs=2, scorer=scorer_args(max_steps=2, save_steps=2), seed=3,
    )
    store = seeded_store(tmp_path / "run", documents=[DOCUMENTS[1]])
    chunk = document_chunks(DOCUMENTS[1], config)[0]
    questions = GOOD + ["What does pass do?", "What does the pass statement do?"]
    nodes = [
        {"node_id": f"{chunk.chunk_id}-r0-{index}", "chunk_id": chunk.chunk_id, "document_id": "pass", "round": 0,
         "depth": index, "parent_id": None, "context": chunk.text, "question": question, "status": "question",
         "reason": "", "attempts": 1, "raw": "", "children": []}
        for index, question in enumerate(questions)
    ]
    store.write_json({"document_id": "pass", "nodes": nodes, "stats": {"calls": 6, "parse_failures": 1},
                      "rounds_by_chunk": {}, "questions_by_chunk": {}}, cst_file("pass"))
    for variant in NEGATIVE_VARIANTS:
        pairs = [{"pair_id": f"{variant.name}-{i}", "variant": variant.name, "node_id": nodes[i]["node_id"],
                  "context": chunk.text, "pos_query": GOOD[i], "neg_query": BAD[i]} for i in range(2)]
        store.write_json({"variant": variant.name, "asked": 2, "pairs": pairs, "stats": {"calls": 2}},
                         negatives_file(variant.name))

    result = run_on(config, tiny_backend, store, RecordingProgress(), scorer_model_dir=tiny_model_dir)

    assert result.summary["scorer_pairs"] == 6 and result.summary["scorer_steps"] == 2
    assert result.summary["scorer_skipped"] == ""
    assert "the paper: QLoRA on a 4-bit NF4 base" in result.summary["scorer_backbone"]  # the CPU deviation, stated
    rows = [json.loads(line) for line in artifact(result, "queries").jsonl_path.read_text().splitlines()]
    assert len(rows) == 6 and all(0 < row["score"] < 1 for row in rows)
    by_rank = sorted(rows, key=lambda row: row["rank"])
    assert [row["score"] for row in by_rank] == sorted((row["score"] for row in rows), reverse=True)
    kept = [row for row in rows if row["kept"]]
    assert 0 < len(kept) <= chunk.gen_count
    sft = [json.loads(line) for line in artifact(result, "sft").jsonl_path.read_text().splitlines()]
    assert {row["query_id"] for row in sft} <= {row["query_id"] for row in kept}
    assert len(sft) + result.summary["empty_answers"] == len(kept)
    for row in sft:
        assert set(row) >= {"context", "question", "answer", "document_id", "title", "depth", "score"}
        assert row["title"] == "The pass statement" and row["answer"]
    pairs_rows = artifact(result, "scorer_pairs").jsonl_path.read_text().splitlines()
    assert len(pairs_rows) == 6
    if sft:
        from datasets import load_from_disk

        assert load_from_disk(str(store.path("sft_dataset"))).num_rows == len(sft)
    config_again = replace(config, rouge_threshold=0.1)  # finished files win: a rerun changes nothing
    assert run_on(config_again, tiny_backend, store, RecordingProgress(), scorer_model_dir=tiny_model_dir).summary[
        "questions_kept"
    ] == len(kept)

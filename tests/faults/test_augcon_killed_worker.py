"""An AugCon run whose worker is SIGKILLed at a random point, resumed: the same artifacts as an uninterrupted run.

AugCon grows each document's Context-Split-Trees (one document a batch here) and writes one file per
finished document. The test waits for the k-th of those files (k drawn from the early documents,
seeded and printed so a failure can be replayed with REFINERY_FAULT_SEED), SIGSTOPs the worker at
once so it cannot finish in between, SIGKILLs it, lets the site mark the run lost, resumes it on a
fresh worker and compares with an uninterrupted run of the same config: every document's tree once,
the finished ones not grown again, the same model output (each call is seeded by its document, round
and level), and the same artifacts. The tiny random model's output is noise, so nearly every split
fails to parse; the trees record each unparsable output, and those are compared.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.faults.kill_points import fault_seed, file_times, pause_when_file_appears
from tests.faults.support import resume_once_lost, tiny_model_entry
from tests.fixtures.runs import wait_for_run
from tests.webapp.augcon.conftest import qa_set  # noqa: F401 - fixture
from webapp.augcon import services
from webapp.library.models import Corpus, Document
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DOCUMENTS = 4
OVERRIDES = {
    "batch_size": 1,  # one document a batched call: one finished file per document, many points to be killed at
    "max_attempts": 2,
    "max_rounds_per_chunk": 1,
    "max_chunks_per_document": 1,
    "question_max_tokens": 8,
    "answer_max_tokens": 8,
    "judge_max_tokens": 2,
    "cst_demonstrations": 1,
    "min_paragraph_length": 0,
    "scorer": {"torch_threads": 1},
}


def document_ids() -> list[str]:
    return [f"doc{position:05d}" for position in range(DOCUMENTS)]


def small_corpus() -> Corpus:
    corpus = Corpus.objects.create(name="facts", document_count=DOCUMENTS)
    for position in range(DOCUMENTS):
        Document.objects.create(
            corpus=corpus,
            position=position,
            title=f"Fact {position}",
            text=" ".join(
                f"Fact {position}.{sentence}: adding {position} to {sentence} gives {position + sentence}, "
                f"and multiplying them gives {position * sentence}."
                for sentence in range(6)
            ),
        )
    return corpus


def tree_files(directory: Path) -> dict[str, dict[str, Any]]:
    """Each document's finished trees: every node (with the model's raw output) and its call counts."""
    trees = {}
    for document_id in document_ids():
        record = json.loads((directory / "cst" / f"{document_id}.json").read_text())
        trees[document_id] = {key: value for key, value in record.items() if key != "seconds"}
    return trees


def jsonl_rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line]


def test_augcon_worker_killed_at_a_random_point_resumes_to_the_uninterrupted_artifacts(
    live_settings,
    rq_worker,
    researcher,
    tiny_model_dir,
    qa_set,  # noqa: F811
):
    config = services.augcon_config_build(
        model=tiny_model_entry(tiny_model_dir),
        corpus=small_corpus(),
        few_shot_set=qa_set,
        documents=f"0-{DOCUMENTS - 1}",
        preset="tiny-cpu-demo",
        overrides=OVERRIDES,
    )
    first_worker = rq_worker()

    reference = run_services.run_create(kind="augcon", user=researcher, config=config, name="uninterrupted")
    reference = wait_for_run(reference, timeout=120, what="the uninterrupted AugCon run")
    assert reference.status == PipelineRun.Status.SUCCEEDED, reference.error + first_worker.log_text()[-3000:]
    assert reference.summary["documents"] == DOCUMENTS

    seed = fault_seed()
    files = [f"cst/{document_id}.json" for document_id in document_ids()]
    # An early document: the later documents' trees and every later stage are left.
    kill_after = random.Random(seed).randint(1, DOCUMENTS // 2)
    kill_point = f"REFINERY_FAULT_SEED={seed}: killed once {files[kill_after - 1]} (file {kill_after}) was written"
    print(kill_point)

    run = run_services.run_create(kind="augcon", user=researcher, config=config, name="killed")
    run_directory = run_services.run_directory(run)
    run = pause_when_file_appears(run, first_worker, run_directory / files[kill_after - 1], 120, kill_point)
    first_worker.kill()
    assert run.is_active, f"the run finished before the kill ({kill_point})"
    assert not (run_directory / files[-1]).exists(), f"every document was grown before the kill ({kill_point})"
    written = file_times(run_directory, files)

    run, second_worker = resume_once_lost(run, rq_worker, kill_point, lost_within=60, finish_within=120)
    assert run.status == PipelineRun.Status.SUCCEEDED, (
        f"{kill_point}: {run.error}\n{run.traceback}\n{second_worker.log_text()[-3000:]}"
    )

    for name, mtime in written.items():
        assert (run_directory / name).stat().st_mtime_ns == mtime, f"{name} was grown again ({kill_point})"
    assert f"questions: {len(written)} of {DOCUMENTS} documents already finished" in run.log_tail, kill_point
    trees, reference_trees = tree_files(run_directory), tree_files(run_services.run_directory(reference))
    assert trees == reference_trees, f"the resumed run's trees differ from the uninterrupted run's ({kill_point})"
    node_ids = [node["node_id"] for tree in trees.values() for node in tree["nodes"]]
    assert node_ids and len(node_ids) == len(set(node_ids)), f"tree nodes twice: {node_ids} ({kill_point})"

    artifacts = {artifact.name: artifact for artifact in run.artifacts.all()}
    reference_artifacts = {artifact.name: artifact for artifact in reference.artifacts.all()}
    assert set(artifacts) == set(reference_artifacts) == {"queries", "scorer_pairs", "sft"}, kill_point
    for name, artifact in artifacts.items():
        rows, reference_rows = jsonl_rows(artifact.jsonl_path), jsonl_rows(reference_artifacts[name].jsonl_path)
        assert artifact.row_count == reference_artifacts[name].row_count == len(rows), f"{name} ({kill_point})"
        assert rows == reference_rows, f"{name}: other rows than the uninterrupted run's ({kill_point})"
    query_ids = [row["query_id"] for row in jsonl_rows(artifacts["queries"].jsonl_path)]
    assert len(query_ids) == len(set(query_ids)), f"queries twice: {query_ids} ({kill_point})"
    counts = ("documents", "chunks", "cst_calls", "parse_failures", "retries", "answer_calls", "sft_rows")
    assert {key: run.summary[key] for key in counts} == {key: reference.summary[key] for key in counts}, kill_point

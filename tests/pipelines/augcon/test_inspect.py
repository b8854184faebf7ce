"""What the run page reads back from a run directory part way through: stages done, per-document counts, trees."""

from __future__ import annotations

from pipelines.augcon import inspect
from pipelines.augcon.files import CHUNKS_FILE, RANKING_FILE, cst_file

from .conftest import seeded_store


def _node(node_id: str, status: str, parent_id: str | None = None) -> dict:
    return {
        "node_id": node_id,
        "chunk_id": "while-0",
        "parent_id": parent_id,
        "status": status,
        "reason": "" if status == "question" else "unparsable",
        "context": "a context",
        "question": "What?" if status == "question" else "",
        "round": 0,
        "depth": 0 if parent_id is None else 1,
    }


def test_a_run_part_way_through_shows_its_finished_stages_counts_and_trees(tmp_path):
    store = seeded_store(tmp_path / "run")
    store.write_jsonl([{"document_id": "while", "chunk_id": "while-0", "text": "a context"}], CHUNKS_FILE)
    stats = {"calls": 3, "parse_failures": 1, "retries": 1, "gave_up": 0}
    nodes = [_node("n0", "question"), _node("n1", "question", "n0"), _node("n2", "parse_failed", "n0")]
    store.write_json({"document_id": "while", "nodes": nodes, "stats": stats}, cst_file("while"))
    store.write_json({"n0": {"kept": True, "rank": 1, "score": 0.9}, "n1": {"kept": False, "rank": 2}}, RANKING_FILE)

    overview = inspect.run_overview(store.path())
    stages = {stage["name"]: stage for stage in overview["stages"]}
    assert (
        stages["questions (Context-Split-Tree)"]["done"] == 1 and stages["questions (Context-Split-Tree)"]["total"] == 2
    )
    assert stages["scorer"]["note"] == "waiting" and stages["rank and dedup"]["done"] == 1
    assert overview["totals"] == {
        "questions": 2,
        "kept": 1,
        "calls": 3,
        "parse_failures": 1,
        "retries": 1,
        "gave_up": 0,
        "ungrounded": 0,
    }
    assert [row["finished"] for row in overview["documents"]] == [True, False]

    trees = inspect.document_trees(store.path(), "while")
    (root,) = trees["chunks"][0]["trees"]
    assert root["verdict"] == "kept" and [child["verdict"] for child in root["child_nodes"]] == [
        "dropped",
        "no question",
    ]
    assert inspect.document_trees(store.path(), "pass") is None  # not finished
    assert inspect.document_trees(store.path(), "../while") is None
    assert inspect.run_overview(tmp_path / "missing") == {"stages": [], "documents": [], "totals": {}}
    assert inspect.sft_dataset_path(store.path()) is None

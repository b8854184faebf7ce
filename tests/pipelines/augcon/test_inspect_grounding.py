"""The tree viewer's data carries each node's grounding, and the run page counts the ungrounded splits dropped."""

from __future__ import annotations

from pipelines.augcon import inspect
from pipelines.augcon.files import CHUNKS_FILE, cst_file

from .conftest import seeded_store


def _node(node_id: str, status: str, parent_id: str | None, grounding: float | None) -> dict:
    node = {
        "node_id": node_id,
        "chunk_id": "while-0",
        "parent_id": parent_id,
        "status": status,
        "reason": "",
        "context": "a context",
        "question": "What?" if status == "question" else "",
        "round": 0,
        "depth": 0 if parent_id is None else 1,
    }
    if grounding is not None:
        node["grounding"] = grounding
    return node


def test_each_node_shows_its_grounding_and_the_totals_count_the_ungrounded(tmp_path):
    store = seeded_store(tmp_path / "run")
    store.write_jsonl([{"document_id": "while", "chunk_id": "while-0", "text": "a context"}], CHUNKS_FILE)
    nodes = [
        _node("n0", "question", None, None),  # a root has no parent to be grounded in
        _node("n1", "question", "n0", 0.9),
        _node("n2", "ungrounded", "n0", 0.21),
    ]
    stats = {"calls": 2, "parse_failures": 0, "retries": 0, "gave_up": 0}
    store.write_json({"document_id": "while", "nodes": nodes, "stats": stats}, cst_file("while"))

    assert inspect.run_overview(store.path())["totals"]["ungrounded"] == 1
    (root,) = inspect.document_trees(store.path(), "while")["chunks"][0]["trees"]
    assert root["grounding"] is None
    assert [(child["grounding"], child["verdict"]) for child in root["child_nodes"]] == [
        (0.9, "not ranked yet"),
        (0.21, "no question"),
    ]

"""The split-tree viewer shows each child's grounding; a root (no parent) and an old tree (no figure) show none."""

from __future__ import annotations

from django.template.loader import render_to_string


def _node(node_id: str, status: str, grounding: float | None, children: list[dict] | None = None) -> dict:
    return {
        "node_id": node_id,
        "status": status,
        "depth": 0 if not node_id.count(".") else 1,
        "question": "What does pass do?" if status == "question" else "",
        "context": "The pass statement is a null operation.",
        "grounding": grounding,
        "score": None,
        "verdict": "no question",
        "drop_reason": "21% of its words appear in order in the parent" if status == "ungrounded" else "",
        "attempts": 1,
        "raw": "",
        "child_nodes": children or [],
    }


def test_the_tree_shows_the_grounding_of_each_child_and_why_an_ungrounded_one_stopped():
    root = _node("r", "question", None, [_node("r.1", "question", 0.9), _node("r.2", "ungrounded", 0.21)])
    html = render_to_string("augcon/partials/_tree_node.html", {"node": root})
    assert html.count("data-grounding=") == 2
    assert "grounding 0.90" in html and "grounding 0.21" in html
    assert "status-ungrounded" in html and "21% of its words appear in order in the parent" in html

"""A Context-Split-Tree grown by the real SmolLM2-135M on a short real document (slow: CPU generation)."""
from __future__ import annotations

import pytest

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import cst_demonstrations, document_chunks
from pipelines.augcon.cst import build_document_trees
from pipelines.common.progress import RecordingProgress

from .conftest import FEW_SHOT

pytestmark = pytest.mark.slow

SHORT_DOCUMENT = {
    "document_id": "pass",
    "text": "The pass statement is a null operation: nothing happens when it runs. "
    "It is a placeholder where a statement is required.",
}


def test_the_real_model_grows_a_tree_whose_children_are_shorter_and_whose_questions_are_real(embedded_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    # A two-sentence document and leaves at 68 characters keep the tree to a root and its children: a shared
    # 2-core CPU decodes a few tokens a second.
    config = AugConConfig(
        length_scale=3.4, min_paragraph_length=0, max_rounds_per_chunk=1, max_attempts=2, question_max_tokens=56,
        cst_demonstrations=3, seed=1,
    )
    chunks = document_chunks(SHORT_DOCUMENT, config)
    assert len(chunks) == 1 and chunks[0].target >= 1 and len(chunks[0].text) > config.leaf_characters
    backend = TransformersBackend(embedded_model_dir, device="cpu", torch_threads=2)
    try:
        trees = build_document_trees(backend, chunks, cst_demonstrations(FEW_SHOT, 3), config, RecordingProgress())
    finally:
        backend.close()
    nodes = {node.node_id: node for node in trees.nodes}
    questions = [node for node in trees.nodes if node.status == "question"]
    assert questions, f"the model produced no parsable split: {[node.raw for node in trees.nodes]}"
    for node in trees.nodes:
        if node.parent_id is not None:
            assert len(node.context) < len(nodes[node.parent_id].context)
        if node.status in ("question", "short_question", "parse_failed"):
            assert len(node.context) > config.leaf_characters, "a node at or under min_length was expanded"
        if node.children:
            assert node.status == "question"
    for node in questions:
        assert len(node.question) >= config.min_question_length
    assert trees.stats.calls >= len(questions) and trees.stats.completion_tokens > 0

"""CST grounding: the share of a sub-context's words found in order in its parent, and the drop threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.cst import AskOutcome, CSTParse, TreeNode, _settle
from pipelines.augcon.grounding import split_grounding
from pipelines.errors import InvalidConfigError

PARENT = (
    "The while statement is used for repeated execution as long as an expression is true. "
    "It repeatedly tests the expression and, if it is true, executes the first suite."
)
VERBATIM = "It repeatedly tests the expression and, if it is true, executes the first suite."
REWRITTEN = "The while statement repeatedly tests the expression and executes the first suite while it is true."
INVENTED = "A decorator wraps a function object in another callable at definition time."


def test_a_verbatim_split_is_fully_grounded_and_an_invented_one_hardly():
    assert split_grounding(VERBATIM, PARENT) == 1.0
    assert split_grounding(INVENTED, PARENT) < 0.2
    assert 0.6 < split_grounding(REWRITTEN, PARENT) < 1.0


def test_grounding_counts_words_in_order_against_the_sub_contexts_length():
    # "tests the expression" then "while statement": only one of the two runs can be in order.
    assert split_grounding("tests the expression while statement", PARENT) == pytest.approx(3 / 5)
    assert split_grounding("Tests THE expression!", PARENT) == 1.0  # case and punctuation do not count
    assert split_grounding("", PARENT) == 0.0
    assert split_grounding("...", PARENT) == 0.0


def _settled(config: AugConConfig) -> tuple[TreeNode, list[TreeNode], dict[str, int]]:
    node = TreeNode(
        node_id="c0-r0-1", chunk_id="c0", document_id="d0", round=0, depth=0, parent_id=None, context=PARENT
    )
    questions = {"c0": 0}
    outcome = AskOutcome(CSTParse("What does the while statement do?", VERBATIM, INVENTED), 1, "")
    return node, _settle(node, outcome, config, questions), questions


def test_a_sub_context_below_min_split_grounding_is_recorded_as_ungrounded_and_never_asked():
    node, children, questions = _settled(AugConConfig(min_split_grounding=0.5))
    assert node.status == "question" and questions == {"c0": 1}
    assert node.children == ["c0-r0-1.1", "c0-r0-1.2"]
    grounded, invented = children
    assert grounded.status == "question" and grounded.grounding == 1.0  # "question": still to be asked
    assert invented.status == "ungrounded" and invented.grounding < 0.5
    assert "below min_split_grounding 50%" in invented.reason


def test_min_split_grounding_zero_keeps_every_split_as_the_paper():
    _node, children, _questions = _settled(AugConConfig(min_split_grounding=0.0))
    assert [child.status for child in children] == ["question", "question"]
    assert all(child.grounding is not None for child in children)


def test_min_split_grounding_outside_zero_to_one_is_refused_naming_the_field():
    with pytest.raises(InvalidConfigError) as refused:
        replace(AugConConfig(), min_split_grounding=1.5)
    assert refused.value.field == "min_split_grounding"
    with pytest.raises(InvalidConfigError):
        AugConConfig.from_dict({"constrained_output": "yes"})

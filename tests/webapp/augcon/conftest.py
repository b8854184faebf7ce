"""Library rows an AugCon run needs: a small corpus of real reference text and the demo QA set."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from webapp.library.models import Corpus, Document, FewShotExample, FewShotSet

REPO_ROOT = Path(__file__).resolve().parents[3]
TEXTS = [
    ("The while statement", "The while statement is used for repeated execution as long as an expression is true. "
     "It repeatedly tests the expression and, if it is true, executes the first suite. If the expression is false, "
     "the suite of the else clause, if present, is executed and the loop terminates."),
    ("The pass statement", "The pass statement is a null operation: when it is executed, nothing happens. It is "
     "useful as a placeholder when a statement is required syntactically but no code needs to be executed."),
    ("The del statement", "Deletion is recursively defined very similar to the way assignment is defined. Deletion "
     "of a target list recursively deletes each target, from left to right."),
]


@pytest.fixture
def corpus(db) -> Corpus:
    corpus = Corpus.objects.create(name="reference", document_count=len(TEXTS))
    for position, (title, text) in enumerate(TEXTS):
        Document.objects.create(corpus=corpus, position=position, title=title, text=text)
    return corpus


@pytest.fixture
def qa_set(db) -> FewShotSet:
    few_shot_set = FewShotSet.objects.create(name="qa", kind=FewShotSet.Kind.QA)
    lines = (REPO_ROOT / "webapp/library/demo/fewshot_qa.jsonl").read_text().splitlines()
    for position, line in enumerate(lines[:3]):
        row = json.loads(line)
        FewShotExample.objects.create(few_shot_set=few_shot_set, position=position, **row)
    few_shot_set.example_count = 3
    few_shot_set.save()
    return few_shot_set

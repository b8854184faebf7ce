"""Reading pair artifacts lazily, their two formats, and sampling (random and stratified)."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from webapp.annotation import pairs


def _write(tmp_path, rows, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_preference_rows_are_labelled_chosen_is_better_and_keep_their_provenance(tmp_path):
    path = _write(tmp_path, [{"prompt": "p", "chosen": "c", "rejected": "r", "chosen_config": "A"}])
    assert pairs.detect_format(path) == pairs.PREFERENCE
    (pair,) = pairs.iter_pairs(path, pairs.PREFERENCE)
    assert (pair.prompt, pair.response_a, pair.response_b, pair.synthetic_label) == ("p", "c", "r", "a")
    assert pair.provenance == {"chosen_config": "A"}


@pytest.mark.parametrize(
    ("verdict", "label"), [("A", "a"), ("model_b", "b"), ("tie", "tie"), ("gpt-x", "b"), (None, "")]
)
def test_evaluation_rows_take_the_machine_label_from_judge_verdict(tmp_path, verdict, label):
    row = {"prompt": "p", "response_a": "x", "response_b": "y", "model_a": "small", "model_b": "gpt-x"}
    if verdict is not None:
        row["judge_verdict"] = verdict
    path = _write(tmp_path, [row])
    assert pairs.detect_format(path) == pairs.EVALUATION
    (pair,) = pairs.iter_pairs(path, pairs.EVALUATION)
    assert pair.synthetic_label == label


def test_a_bad_row_is_named_by_line_and_field(tmp_path):
    path = _write(tmp_path, [
        {"prompt": "p", "chosen": "c", "rejected": "r"}, "", {"prompt": "p", "chosen": "c"},
    ])
    with pytest.raises(pairs.PairProblem, match=r"line 3 of pairs.jsonl: field `rejected` must be text, found missing"):
        list(pairs.iter_pairs(path, pairs.PREFERENCE))


def test_an_unknown_judge_verdict_is_refused_with_its_value(tmp_path):
    path = _write(tmp_path, [{"prompt": "p", "response_a": "x", "response_b": "y", "judge_verdict": "maybe"}])
    with pytest.raises(pairs.PairProblem, match="line 1 .*'maybe'"):
        list(pairs.iter_pairs(path, pairs.EVALUATION))


def test_a_file_that_is_not_pairs_says_which_fields_it_has(tmp_path):
    path = _write(tmp_path, [{"prompt": "p", "response": "r"}])
    with pytest.raises(pairs.PairProblem, match="line 1 .*found prompt, response"):
        pairs.detect_format(path)


def test_chat_formatted_responses_become_text(tmp_path):
    path = _write(tmp_path, [{"prompt": "p", "chosen": [{"role": "assistant", "content": "hi"}], "rejected": "r"}])
    (pair,) = pairs.iter_pairs(path, pairs.PREFERENCE)
    assert pair.response_a == "hi"


def test_allocation_is_proportional_and_represents_every_group():
    assert pairs.allocate({"big": 90, "small": 10}, 10) == {"big": 9, "small": 1}
    assert pairs.allocate({"big": 98, "rare": 2}, 10) == {"big": 9, "rare": 1}
    assert pairs.allocate({"a": 3, "b": 3}, 100) == {"a": 3, "b": 3}
    assert sum(pairs.allocate({"a": 5, "b": 7, "c": 1}, 6).values()) == 6


def test_random_sampling_is_uniform_over_the_stream():
    population = [pairs.Pair(i, "p", "a", "b", "a") for i in range(1, 21)]
    hits = Counter()
    rng = random.Random(1)
    for _ in range(2000):
        sample, seen = pairs.sample_pairs(iter(population), size=5, group_by="", stratified=False, rng=rng)
        assert seen == 20 and len(sample) == 5
        hits.update(pair.line for pair, _ in sample)
    # Each line is drawn with probability 1/4: 500 expected per line out of 2000 samples.
    assert all(420 < hits[line] < 580 for line in range(1, 21)), hits


def test_stratified_sampling_by_configuration_pair(tmp_path):
    rows = [{"prompt": "p", "chosen": "c", "rejected": "r", "chosen_config": "big", "rejected_config": "small"}] * 18
    rows += [{"prompt": "p", "chosen": "c", "rejected": "r", "chosen_config": "big", "rejected_config": "tiny"}] * 2
    path = _write(tmp_path, rows)
    sample, seen = pairs.sample_pairs(
        pairs.iter_pairs(path, pairs.PREFERENCE), size=5, group_by=pairs.CONFIG_PAIR, stratified=True, rng=random.Random(3)
    )
    assert seen == 20
    assert Counter(group for _, group in sample) == {"big vs small": 4, "big vs tiny": 1}

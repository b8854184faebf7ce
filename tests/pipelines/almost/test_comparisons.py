"""Synthetic comparisons: every pair follows the rubric, and each named filter removes exactly the pairs its rule names."""
from __future__ import annotations

import pytest

from pipelines.almost.config import FILTERS, AlmostConfig, ComparisonConfig, ResponseConfiguration
from pipelines.almost.cs import build_comparisons, compare_prompt, count_pairs
from pipelines.common.progress import NullProgress
from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError

GOOD = "Reverse a copy with slicing: items[::-1] returns a new list and leaves the original as it was."
GOOD_LONGER = GOOD + " The built-in reversed() gives an iterator over the same items, which list() turns into a list."

# (filter, chosen, rejected): the chosen response (or the pair) breaks that rule and no other.
CASES = [
    ("empty", "", GOOD),
    ("too_short", "Use items[::-1].", GOOD),
    ("ends_with_question", "Do you want to reverse the list in place, or make a reversed copy of it first?", GOOD),
    ("starts_with_well", "Well, the simplest way is slicing: items[::-1] makes a reversed copy of the list.", GOOD),
    ("no_final_punctuation", "The simplest way is slicing with a negative step, items[::-1], which copies the", GOOD),
    ("dont_know", "I don't know the best way in general, but slicing with items[::-1] gives a reversed copy.", GOOD),
    ("contains_human_turn", "Slicing with items[::-1] gives a copy. Human: thanks, and how do I sort it too.", GOOD),
    ("contains_image", "Slicing with items[::-1] gives a reversed copy, as this diagram shows: <Image>.", GOOD),
    ("identical", GOOD, GOOD),
]


def _config(**changes) -> ComparisonConfig:
    return ComparisonConfig(**changes)


@pytest.mark.parametrize(("rule", "chosen", "rejected"), CASES, ids=[case[0] for case in CASES])
def test_each_filter_removes_exactly_the_pair_its_rule_names(rule, chosen, rejected):
    rows = compare_prompt("p0", "How do I reverse a list?", [("a", chosen), ("b", rejected)], _config())
    assert len(rows) == 1
    assert rows[0]["failed_filters"] == [rule]
    assert rows[0]["kept"] is False and rows[0]["dropped_by"] == "filters"
    assert rows[0]["verdicts"][rule] == "fail"
    others = {name: verdict for name, verdict in rows[0]["verdicts"].items() if name != rule}
    # The length rule is not evaluated on a pair a response rule already removed.
    assert all(verdict == ("skip" if name == "length" and rule != "identical" else "pass") for name, verdict in others.items())

    # Switched off, the same rule no longer removes the pair, and its verdict says so (a chosen side
    # that is now usable may still meet the length rule, which is a rule of its own).
    rows = compare_prompt("p0", "How do I reverse a list?", [("a", chosen), ("b", rejected)], _config(filters={rule: False}))
    assert rows[0]["verdicts"][rule] == "off" and rule not in rows[0]["failed_filters"]
    assert set(rows[0]["failed_filters"]) <= {"length"}


@pytest.mark.parametrize(("rule", "chosen", "rejected"), [case for case in CASES if case[0] != "identical"])
def test_a_response_rule_also_removes_the_pair_when_the_rejected_side_breaks_it(rule, chosen, rejected):
    rows = compare_prompt("p0", "q", [("a", rejected), ("b", chosen)], _config())
    assert rows[0]["failed_filters"] == [rule]


def test_the_length_rule_removes_a_shorter_chosen_below_mean_minus_half_std_and_nothing_else():
    short = "Slicing with items[::-1] copies it."  # 35 characters: under the mean - std/2 of the four
    long_a, long_b, long_c = GOOD_LONGER, GOOD_LONGER + " Both keep the original.", GOOD_LONGER + " Done."
    responses = [("best", short), ("second", long_a), ("third", long_b), ("fourth", long_c)]
    config = _config(filters={"too_short": False})
    rows = compare_prompt("p0", "q", responses, config)
    by_pair = {(row["chosen_config"], row["rejected_config"]): row for row in rows}
    assert {pair for pair, row in by_pair.items() if "length" in row["failed_filters"]} == {
        ("best", "second"), ("best", "third"), ("best", "fourth")
    }
    # A longer chosen is never removed by the length rule, however short the others are.
    assert not by_pair[("second", "third")]["failed_filters"]
    # A shorter chosen above the bound is kept: "second" is shorter than "third" yet long enough.
    assert len(long_a) < len(long_b) and by_pair[("second", "third")]["kept"]


def test_every_kept_pair_is_ordered_by_the_rubric_and_each_configuration_is_chosen_once():
    responses = [(f"c{rank}", GOOD_LONGER + " " + "Yes." * (4 - rank)) for rank in range(4)]
    rows = compare_prompt("p0", "q", responses, _config())
    assert len(rows) == 6  # every pair of four configurations is a candidate
    assert all(row["chosen_rank"] < row["rejected_rank"] for row in rows)
    kept = [(row["chosen_config"], row["rejected_config"]) for row in rows if row["kept"]]
    assert kept == [("c0", "c1"), ("c1", "c2"), ("c2", "c3")]  # the best-ranked worse configuration
    assert {row["dropped_by"] for row in rows if not row["kept"]} == {"one_pair_per_chosen"}

    all_pairs = compare_prompt("p0", "q", responses, _config(one_pair_per_chosen=False))
    assert sum(row["kept"] for row in all_pairs) == 6


def test_a_better_configuration_whose_best_partner_is_filtered_pairs_with_the_next_one_as_the_original():
    responses = [("c0", GOOD_LONGER), ("c1", "I do not know."), ("c2", GOOD)]
    rows = compare_prompt("p0", "q", responses, _config())
    kept = [(row["chosen_config"], row["rejected_config"]) for row in rows if row["kept"]]
    assert kept == [("c0", "c2")]


def test_counts_give_pairs_before_and_after_each_filter_in_order():
    table = [compare_prompt(f"p{index}", "q", [("a", chosen), ("b", rejected)], _config()) for index, (_, chosen, rejected) in enumerate(CASES)]
    rows = [row for rows in table for row in rows] + compare_prompt("ok", "q", [("a", GOOD_LONGER), ("b", GOOD)], _config())
    counts = count_pairs(rows, _config())
    assert counts["candidates"] == len(CASES) + 1
    steps = {step["filter"]: step for step in counts["filters"]}
    assert [step["filter"] for step in counts["filters"]] == list(FILTERS)
    for rule, _, _ in CASES:
        assert steps[rule]["failed"] == 1 and steps[rule]["before"] - steps[rule]["after"] == 1
    assert steps["length"]["failed"] == 0
    assert counts["after_filters"] == counts["kept"] == 1
    off = count_pairs(rows, _config(filters={"dont_know": False}))
    assert {step["filter"]: step for step in off["filters"]}["dont_know"]["enabled"] is False


def test_build_comparisons_writes_all_candidates_with_verdicts_and_the_kept_pairs(tmp_path):
    config = AlmostConfig(configurations=[ResponseConfiguration("big", 3, "hhh"), ResponseConfiguration("small", 1, "hhh")])
    prompts = [{"prompt_id": "g0", "prompt": "How do I reverse a list?"}, {"prompt_id": "g1", "prompt": "What is a tuple?"}]
    responses = {
        "big-hhh-3shot": [{"prompt_id": "g0", "response": GOOD_LONGER}, {"prompt_id": "g1", "response": "I don't know the answer to that one, so I would rather not guess at it."}],
        "small-hhh-1shot": [{"prompt_id": "g0", "response": GOOD}, {"prompt_id": "g1", "response": GOOD}],
    }
    store = RunStore(tmp_path)
    counts = build_comparisons(config, prompts, responses, store, NullProgress())
    assert counts["candidates"] == 2 and counts["kept"] == 1
    kept = list(store.read_jsonl("cs/comparisons.jsonl"))
    assert [(row["prompt"], row["chosen_config"], row["rejected_config"]) for row in kept] == [
        ("How do I reverse a list?", "big-hhh-3shot", "small-hhh-1shot")
    ]
    assert set(kept[0]) >= {"prompt", "chosen", "rejected", "chosen_config", "rejected_config", "verdicts", "kept"}
    everything = list(store.read_jsonl("cs/comparisons-all.jsonl"))
    assert [row["failed_filters"] for row in everything] == [[], ["dont_know"]]


def test_unknown_filter_names_are_refused_naming_the_known_ones():
    with pytest.raises(InvalidConfigError, match="unknown comparison filter.*the filters are empty, too_short"):
        ComparisonConfig(filters={"repeat": False})

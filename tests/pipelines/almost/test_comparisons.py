"""Synthetic comparisons: every pair follows the rubric, and each named filter removes exactly the pairs its rule names."""

from __future__ import annotations

import itertools
import random
import re
import statistics
import string

import pytest

from pipelines.almost.comparisons import BEFORE_PAIRING, PAIRING_RULE, build_comparisons, compare_prompt, count_pairs
from pipelines.almost.config import (
    AlmostConfig,
    ComparisonConfig,
    PromptGenerationConfig,
    ResponseConfiguration,
)
from pipelines.almost.prompt_generation import length_verdict
from pipelines.common.progress import RecordingProgress
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
    assert all(
        verdict == ("skip" if name == "length" and rule != "identical" else "pass") for name, verdict in others.items()
    )

    # Switched off, the same rule no longer removes the pair, and its verdict says so (a chosen side
    # that is now usable may still meet the length rule, which is a rule of its own).
    rows = compare_prompt(
        "p0", "How do I reverse a list?", [("a", chosen), ("b", rejected)], _config(filters={rule: False})
    )
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
        ("best", "second"),
        ("best", "third"),
        ("best", "fourth"),
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
    table = [
        compare_prompt(f"p{index}", "q", [("a", chosen), ("b", rejected)], _config())
        for index, (_, chosen, rejected) in enumerate(CASES)
    ]
    rows = [row for rows in table for row in rows] + compare_prompt(
        "ok", "q", [("a", GOOD_LONGER), ("b", GOOD)], _config()
    )
    counts = count_pairs(rows, _config())
    assert counts["candidates"] == len(CASES) + 1
    steps = {step["filter"]: step for step in counts["filters"]}
    # The order they act in: response rules and length, the pairing rule, then "identical" (as the original).
    assert [step["filter"] for step in counts["filters"]] == [*BEFORE_PAIRING, PAIRING_RULE, "identical"]
    for rule, _, _ in CASES:
        assert steps[rule]["failed"] == 1 and steps[rule]["before"] - steps[rule]["after"] == 1
    assert steps["length"]["failed"] == 0
    assert steps[PAIRING_RULE]["before"] == steps[PAIRING_RULE]["after"] == 2
    assert steps["identical"]["after"] == counts["kept"] == 1
    off = count_pairs(rows, _config(filters={"dont_know": False}))
    assert {step["filter"]: step for step in off["filters"]}["dont_know"]["enabled"] is False


def test_build_comparisons_writes_all_candidates_with_verdicts_and_the_kept_pairs(tmp_path):
    config = AlmostConfig(
        configurations=[ResponseConfiguration("big", 3, "hhh"), ResponseConfiguration("small", 1, "hhh")]
    )
    prompts = [
        {"prompt_id": "g0", "prompt": "How do I reverse a list?"},
        {"prompt_id": "g1", "prompt": "What is a tuple?"},
    ]
    responses = {
        "big-hhh-3shot": [
            {"prompt_id": "g0", "response": GOOD_LONGER},
            {"prompt_id": "g1", "response": "I don't know the answer to that one, so I would rather not guess at it."},
        ],
        "small-hhh-1shot": [{"prompt_id": "g0", "response": GOOD}, {"prompt_id": "g1", "response": GOOD}],
    }
    store = RunStore(tmp_path)
    counts = build_comparisons(config, prompts, responses, store, RecordingProgress())
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


def test_an_identical_pair_uses_up_the_chosen_configurations_slot_as_in_the_original():
    # c0 and c1 wrote the same text. The original pairs c0 with c1 (its best-ranked worse partner),
    # then its reward-model loader drops that pair as chosen == rejected: c0 is not paired with c2.
    responses = [("c0", GOOD_LONGER), ("c1", GOOD_LONGER), ("c2", GOOD)]
    rows = compare_prompt("p0", "q", responses, _config())
    by_pair = {(row["chosen_config"], row["rejected_config"]): row for row in rows}
    assert by_pair[("c0", "c1")]["failed_filters"] == ["identical"] and by_pair[("c0", "c1")]["dropped_by"] == "filters"
    assert by_pair[("c0", "c2")]["dropped_by"] == PAIRING_RULE and not by_pair[("c0", "c2")]["kept"]
    assert [pair for pair, row in by_pair.items() if row["kept"]] == [("c1", "c2")]
    counts = count_pairs(rows, _config())
    steps = {step["filter"]: step for step in counts["filters"]}
    assert (steps[PAIRING_RULE]["before"], steps[PAIRING_RULE]["after"]) == (3, 2)
    assert (steps["identical"]["before"], steps["identical"]["after"], steps["identical"]["failed"]) == (2, 1, 1)

    # With "identical" switched off the pair is kept (and still holds c0's slot).
    rows = compare_prompt("p0", "q", responses, _config(filters={"identical": False}))
    assert [(row["chosen_config"], row["rejected_config"]) for row in rows if row["kept"]] == [
        ("c0", "c1"),
        ("c1", "c2"),
    ]


@pytest.mark.parametrize("marker", ["Human:", "human:", "HUMAN:", "<Image>", "<image>", "<IMAGE>"])
def test_human_turn_and_image_markers_are_matched_in_any_case_as_the_original(marker):
    text = f"Slicing with items[::-1] gives a reversed copy of the list, see {marker} it works."
    rows = compare_prompt("p0", "q", [("a", text), ("b", GOOD)], _config())
    expected = "contains_image" if "image" in marker.lower() else "contains_human_turn"
    assert rows[0]["failed_filters"] == [expected]


@pytest.mark.parametrize("ending", list(string.punctuation))
def test_a_short_prompt_ending_in_any_punctuation_mark_is_not_too_short(ending):
    config = PromptGenerationConfig()
    assert length_verdict(f"Name a fruit{ending}", config) is None
    assert length_verdict("Name a fruit", config) == "too_short"


# -- a differential test against the original's SyntheticRanker ----------------------------------------
# A small re-implementation of naver-ai/ALMoST: `PromptedResponseGenerator.check_bad` (rg marks a bad
# response "BAD"), `SyntheticRanker.get_comparison` / `check_length` (cs), and `RMDataset`'s
# `chosen != rejected` (the reward model's loader). Written from the released code, not imported.


def _original_check_bad(response: str, min_length: int = 50) -> bool:
    if response == "BAD" or len(response) < min_length:
        return True
    if response.endswith("?") or response.endswith(":"):
        return True
    if response.lower().startswith("well"):
        return True
    if response[-1] not in [".", "!"]:
        return True
    if re.search(r"(don('|’)t|do not)\s+know", response, flags=re.IGNORECASE):
        return True
    if re.search(r"Human[:]", response, flags=re.IGNORECASE):
        return True
    return bool(re.search(r"[<]Image[>]", response, flags=re.IGNORECASE))


def _original_pairs(instance: dict[str, str], rubric: list[str]) -> list[tuple[str, str]]:
    ranking = {name: rank for rank, name in enumerate(rubric)}
    gathered = sorted(
        [(name, text, ranking[name]) for name, text in instance.items() if text.strip() and text != "BAD"],
        key=lambda item: item[-1],
    )
    if len(gathered) < 2:
        return []
    lengths = [len(text) for text in instance.values() if text != "BAD"]
    bound = statistics.fmean(lengths) - statistics.pstdev(lengths) / 2
    long_enough = {name: len(text) >= bound for name, text in instance.items()}
    pairs, checked = [], []
    for better, worse in itertools.combinations(gathered, 2):
        if better[0] in checked:
            continue
        if len(better[1]) < len(worse[1]) and not long_enough[better[0]]:
            continue
        pairs.append((better, worse))
        checked.append(better[0])
    # The reward model's loader: `[x for x in data if x['chosen'] != x['rejected']]`.
    return [(better[0], worse[0]) for better, worse in pairs if better[1] != worse[1]]


def _random_response(rng: random.Random) -> str:
    words = ["the", "list", "copy", "slice", "value", "returns", "a", "new", "order", "items", "sorted", "keeps"]
    body = " ".join(rng.choice(words) for _ in range(rng.randint(3, 30)))
    roll = rng.random()
    if roll < 0.04:
        body = "well " + body
    elif roll < 0.08:
        body += " I don't know"
    elif roll < 0.12:
        body += rng.choice([" human: and then", " Human: more", " <image> here", " <IMAGE>"])
    return body.capitalize() + rng.choice([".", ".", ".", "!", "?", ":", ""])


@pytest.mark.parametrize("duplicate_share", [0.0, 0.1, 0.3])
def test_kept_pairs_equal_the_original_synthetic_rankers_on_random_responses_with_duplicates(duplicate_share):
    rng = random.Random(20231)
    rubric = ["c0", "c1", "c2", "c3"]
    config = _config()
    mismatches, duplicates_that_matter = 0, 0
    for prompt_index in range(3000):
        texts = [_random_response(rng) for _ in rubric]
        for position in range(1, len(texts)):
            if rng.random() < duplicate_share:
                texts[position] = texts[rng.randrange(position)]
        instance = {
            name: ("BAD" if _original_check_bad(text) else text) for name, text in zip(rubric, texts, strict=True)
        }
        expected = _original_pairs(instance, rubric)
        rows = compare_prompt(f"p{prompt_index}", "q", list(zip(rubric, texts, strict=True)), config)
        kept = [(row["chosen_config"], row["rejected_config"]) for row in rows if row["kept"]]
        mismatches += kept != expected
        duplicates_that_matter += any(
            row["dropped_by"] == "filters" and row["failed_filters"] == ["identical"] for row in rows
        )
    assert mismatches == 0
    if duplicate_share:
        assert duplicates_that_matter > 50  # the injected duplicates do reach the pairing rule

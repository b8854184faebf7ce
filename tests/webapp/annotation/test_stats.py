"""The agreement statistics against textbook examples with published values."""

from __future__ import annotations

import re

import pytest

from webapp.annotation import stats


def test_cohen_kappa_matches_the_textbook_two_by_two_example():
    # Wikipedia's "Cohen's kappa" example: 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> kappa 0.4.
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert stats.cohen_kappa(first, second) == pytest.approx(0.4)


def test_cohen_kappa_is_one_for_identical_raters_and_undefined_without_variation():
    assert stats.cohen_kappa(["a", "b", "tie"], ["a", "b", "tie"]) == pytest.approx(1.0)
    assert stats.cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert stats.cohen_kappa([], []) is None


def test_fleiss_kappa_matches_fleiss_1971_worked_example():
    # Wikipedia's "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories -> kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert stats.fleiss_kappa(table) == pytest.approx(0.20993, abs=1e-5)


def test_fleiss_kappa_refuses_items_with_different_numbers_of_ratings():
    with pytest.raises(ValueError, match="same number"):
        stats.fleiss_kappa([[2, 0], [1, 2]])


def test_krippendorff_alpha_matches_the_four_coder_example_with_missing_values():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: alpha = 0.743.
    missing = None
    coder_a = [1, 2, 3, 3, 2, 1, 4, 1, 2, missing, missing, missing]
    coder_b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, missing, 3]
    coder_c = [missing, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, missing]
    coder_d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, missing]
    units = list(zip(coder_a, coder_b, coder_c, coder_d, strict=True))
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_matches_the_two_coder_binary_example():
    # Krippendorff (2011), binary data, two observers, ten units: alpha = 0.095.
    first = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    second = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert stats.krippendorff_alpha_nominal(list(zip(first, second, strict=True))) == pytest.approx(0.095, abs=5e-4)


def test_wilson_interval_matches_hand_computed_values():
    low, high = stats.wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    low, high = stats.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert stats.wilson_interval(0, 0) is None


def test_majority_needs_a_unique_top_verdict():
    assert stats.majority(["a", "a", "b"]) == "a"
    assert stats.majority(["a", "b"]) is None
    assert stats.majority([]) is None


def test_summarize_counts_confirmations_reversals_and_even_splits():
    items = [
        stats.ItemVotes(1, 1, "a", "x", {"ann": "a", "bob": "a"}),
        stats.ItemVotes(2, 2, "a", "x", {"ann": "b", "bob": "b"}),
        stats.ItemVotes(3, 3, "a", "y", {"ann": "a", "bob": "tie"}),
        stats.ItemVotes(4, 4, "a", "y", {}),
    ]
    summary = stats.summarize(items)
    assert summary["judged_items"] == 3
    assert summary["synthetic"]["agree"] == 1 and summary["synthetic"]["n"] == 2
    assert summary["synthetic"]["no_majority"] == 1
    assert summary["synthetic"]["outcomes"] == {"confirmed": 1, "reversed": 1}
    assert [group["group"] for group in summary["by_group"]] == ["x", "y"]
    assert [item.item_id for item in summary["disagreements"]] == [2, 3]
    # ann: a, b, a ; bob: a, b, tie -> observed 2/3, chance (2*1 + 1*1)/9 = 1/3 -> kappa 0.5
    assert summary["agreement"]["cohen"]["kappa"] == pytest.approx(0.5)


def test_a_single_judgment_is_not_a_majority_and_is_reported_apart():
    # Items 1-2 judged by two annotators who agree; items 3-5 judged by one annotator each.
    items = [
        stats.ItemVotes(1, 1, "a", "", {"ann": "a", "bob": "a"}),
        stats.ItemVotes(2, 2, "a", "", {"ann": "b", "bob": "b"}),
        stats.ItemVotes(3, 3, "a", "", {"ann": "a"}),
        stats.ItemVotes(4, 4, "a", "", {"bob": "a"}),
        stats.ItemVotes(5, 5, "b", "", {"ann": "b"}),
    ]
    synthetic = stats.summarize(items)["synthetic"]
    # Headline: only the two items with a real majority (1 agrees, 1 reversed), not 4 of 5.
    assert (synthetic["agree"], synthetic["n"]) == (1, 2)
    assert synthetic["rate"] == pytest.approx(0.5)
    assert synthetic["outcomes"] == {"confirmed": 1, "reversed": 1}
    single = synthetic["single_judgment"]
    assert (single["agree"], single["n"]) == (3, 3)
    assert single["outcomes"] == {"confirmed": 3}
    assert synthetic["no_majority"] == 0


def test_the_statistics_page_headline_leaves_out_items_judged_once(make_campaign, make_user, researcher_client):
    from django.urls import reverse

    from tests.webapp.annotation.conftest import judge_next, preference_rows

    ann, bob = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[ann, bob], rows=preference_rows(3), overlap=1)
    while judge_next(campaign, ann, "a") is not None:
        pass
    html = researcher_client.get(reverse("annotation:detail", args=[campaign.pk])).content.decode()
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    # Three items, each judged by one annotator who agrees with the machine: no majority yet, so no 100%.
    assert not re.search(r'id="stat-synthetic">100\.0%<', html)
    assert "no item with a majority of 2+ judgments yet" in text
    assert "not counted: 3 items judged once (100.0% agree with that one annotator)" in text

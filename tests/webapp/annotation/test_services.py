"""Campaign creation, the assignment rules (overlap, leases, undo), idempotent judgments and the write-back."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from webapp.annotation import services
from webapp.annotation.models import Assignment, Campaign, Item, Judgment

from .conftest import SECRET_CONFIG_BAD, SECRET_CONFIG_GOOD, choice_for, judge_next, preference_rows

pytestmark = pytest.mark.django_db


def test_campaign_samples_the_artifact_and_randomizes_sides_reproducibly(make_campaign, make_user):
    annotators = [make_user("annotator"), make_user("annotator")]
    first = make_campaign(assignees=annotators, rows=preference_rows(40), sample_size=30, seed=11)
    second = make_campaign(assignees=annotators, rows=preference_rows(40), sample_size=30, seed=11)
    assert first.items.count() == 30 and first.source_row_count == 40
    assert first.pair_format == Campaign.PairFormat.PREFERENCE
    sides = list(first.items.values_list("source_line", "a_on_left"))
    assert sides == list(second.items.values_list("source_line", "a_on_left"))
    assert 5 < sum(on_left for _, on_left in sides) < 25, "sides must be randomized per item"
    assert set(first.items.values_list("synthetic_label", flat=True)) == {"a"}


def test_stratified_campaign_represents_every_configuration_pair(make_campaign, make_user):
    rows = preference_rows(20)
    for row in rows[:19]:
        row["rejected_config"] = SECRET_CONFIG_BAD
    campaign = make_campaign(
        assignees=[make_user("annotator")], rows=rows, sample_size=5, overlap=1, sampling="stratified", group_by="config_pair"
    )
    groups = sorted(campaign.items.values_list("group", flat=True))
    assert len(groups) == 5
    assert sum(1 for group in groups if group.endswith("worse-1B")) == 1


def test_bad_input_names_the_problem_and_creates_nothing(make_campaign, make_user, write_artifact, rubric, researcher):
    annotator = make_user("annotator")
    with pytest.raises(ValidationError) as overlap_error:
        make_campaign(assignees=[annotator], overlap=2)
    assert "Overlap 2 needs at least 2 annotators; 1 assigned" in str(overlap_error.value)
    rows = preference_rows(3)
    del rows[1]["rejected"]
    with pytest.raises(ValidationError, match="line 2 of .*`rejected`"):
        make_campaign(assignees=[annotator], rows=rows, overlap=1)
    with pytest.raises(ValidationError, match="No sampled row .* `no_such_column`"):
        make_campaign(assignees=[annotator], overlap=1, group_by="no_such_column")
    assert Campaign.objects.count() == 0 and Item.objects.count() == 0


def test_each_annotator_gets_items_they_have_not_judged_and_never_beyond_the_overlap(make_campaign, make_user):
    ann, bob, cat = (make_user("annotator") for _ in range(3))
    campaign = make_campaign(assignees=[ann, bob, cat], rows=preference_rows(2), overlap=2)
    first = services.assignment_next(campaign=campaign, annotator=ann)
    assert services.assignment_next(campaign=campaign, annotator=ann) == first, "a reload shows the same item"
    assert services.assignment_next(campaign=campaign, annotator=bob) == first
    other = services.assignment_next(campaign=campaign, annotator=cat)
    assert other is not None and other != first, "the first item's two slots are taken"
    for user in (ann, bob, cat):
        judge_next(campaign, user, "a")
    assert judge_next(campaign, ann, "a").item == other
    assert judge_next(campaign, bob, "a") is None
    assert judge_next(campaign, cat, "a") is None, "cat judged `other`; `first` is full"
    counts = {item.pk: item.judgments.count() for item in campaign.items.all()}
    assert sorted(counts.values()) == [2, 2]


def test_an_abandoned_lease_expires_and_the_item_returns_to_the_pool(make_campaign, make_user):
    ann, bob = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[ann, bob], rows=preference_rows(2), overlap=1, lease_minutes=10)
    start = timezone.now()
    abandoned = services.assignment_next(campaign=campaign, annotator=ann, now=start)
    assert services.assignment_next(campaign=campaign, annotator=bob, now=start) != abandoned
    Assignment.objects.filter(annotator=bob).delete()
    later = start + timedelta(minutes=11)
    assert services.assignment_next(campaign=campaign, annotator=bob, now=later) == abandoned
    # ann comes back late: the item went to bob, so her answer is refused rather than exceeding the overlap.
    with pytest.raises(services.LeaseLost):
        services.judgment_submit(
            campaign=campaign, annotator=ann, item_id=abandoned.pk, choice="left", submission_key=uuid.uuid4().hex, now=later
        )
    assert Judgment.objects.count() == 0


def test_a_late_answer_is_kept_when_nobody_took_the_item(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(1), overlap=1, lease_minutes=1)
    start = timezone.now()
    item = services.assignment_next(campaign=campaign, annotator=ann, now=start)
    judgment = services.judgment_submit(
        campaign=campaign, annotator=ann, item_id=item.pk, choice="tie", submission_key=uuid.uuid4().hex,
        now=start + timedelta(hours=2),
    )
    assert judgment.verdict == "tie"


def test_expired_leases_can_be_cleared(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(2), overlap=1, lease_minutes=5)
    start = timezone.now()
    services.assignment_next(campaign=campaign, annotator=ann, now=start)
    assert services.assignments_release_expired(campaign=campaign, now=start) == 0
    assert services.assignments_release_expired(campaign=campaign, now=start + timedelta(minutes=6)) == 1


def test_a_repeated_submission_stores_the_judgment_once(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(2), overlap=1)
    item = services.assignment_next(campaign=campaign, annotator=ann)
    key = uuid.uuid4().hex
    first = services.judgment_submit(campaign=campaign, annotator=ann, item_id=item.pk, choice="left", submission_key=key)
    again = services.judgment_submit(campaign=campaign, annotator=ann, item_id=item.pk, choice="left", submission_key=key)
    other_key = services.judgment_submit(
        campaign=campaign, annotator=ann, item_id=item.pk, choice="right", submission_key=uuid.uuid4().hex
    )
    assert first == again == other_key
    assert Judgment.objects.count() == 1
    assert first.verdict == ("a" if item.a_on_left else "b")


def test_judgments_map_the_pressed_side_back_to_chosen_and_rejected(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(6), overlap=1)
    judged = 0
    while (judgment := judge_next(campaign, ann, "b")) is not None:
        item = judgment.item
        assert judgment.verdict == "b"
        assert judgment.choice == ("right" if item.a_on_left else "left")
        judged += 1
    assert judged == 6  # every row was handed out and checked: an empty loop would check nothing


def test_an_annotator_cannot_judge_an_item_leased_to_someone_else(make_campaign, make_user):
    ann, bob = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[ann, bob], rows=preference_rows(2), overlap=1)
    bobs_item = services.assignment_next(campaign=campaign, annotator=bob)
    with pytest.raises(PermissionDenied):
        services.judgment_submit(
            campaign=campaign, annotator=ann, item_id=bobs_item.pk, choice="left", submission_key=uuid.uuid4().hex
        )


def test_undo_withdraws_the_last_judgment_keeps_it_as_history_and_shows_the_item_again(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(3), overlap=1)
    judge_next(campaign, ann, "a")
    second = judge_next(campaign, ann, "b", flags=["harmful"], comment="rude")
    services.assignment_next(campaign=campaign, annotator=ann)  # the third item is on screen
    withdrawn = services.judgment_undo(campaign=campaign, annotator=ann)
    assert withdrawn == second
    assert services.assignment_next(campaign=campaign, annotator=ann) == second.item
    redo = judge_next(campaign, ann, "tie")
    assert redo.item == second.item
    history = list(Judgment.objects.filter(item=second.item).order_by("created_at").values_list("verdict", "withdrawn_at"))
    assert [verdict for verdict, _ in history] == ["b", "tie"]
    assert history[0][1] is not None and history[1][1] is None
    assert judge_next(campaign, ann, "a") is not None  # the third item is still there
    assert Judgment.objects.filter(withdrawn_at__isnull=True).count() == 3


def test_undo_with_nothing_to_undo_changes_nothing(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(1), overlap=1)
    assert services.judgment_undo(campaign=campaign, annotator=ann) is None


def test_a_closed_campaign_hands_out_nothing_and_takes_no_judgments(make_campaign, make_user):
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=preference_rows(2), overlap=1)
    item = services.assignment_next(campaign=campaign, annotator=ann)
    services.campaign_set_open(campaign=campaign, is_open=False)
    assert services.assignment_next(campaign=campaign, annotator=ann) is None
    with pytest.raises(services.CampaignClosed):
        services.judgment_submit(campaign=campaign, annotator=ann, item_id=item.pk, choice="left", submission_key=uuid.uuid4().hex)


# Verdicts per artifact line for a constructed campaign of six pairs judged by two annotators.
FIRST_VERDICTS = {1: "a", 2: "a", 3: "b", 4: "a", 5: "a", 6: "tie"}
SECOND_VERDICTS = {1: "a", 2: "a", 3: "b", 4: "b", 5: "tie", 6: "tie"}


def constructed_campaign(make_campaign, make_user) -> Campaign:
    """Lines 1-2 confirmed, 3 reversed, 4-5 split evenly, 6 a unanimous tie (see test_views for the figures)."""
    ann, bob = make_user("annotator", username="ann"), make_user("annotator", username="bob")
    campaign = make_campaign(assignees=[ann, bob], rows=preference_rows(6), overlap=2, group_by="config_pair")
    for user, verdicts in ((ann, FIRST_VERDICTS), (bob, SECOND_VERDICTS)):
        while judge_next(campaign, user, lambda item, v=verdicts: v[item.source_line], seconds_spent=4.0) is not None:
            pass
    return campaign


def test_write_back_drops_or_follows_the_human_majority(make_campaign, make_user):
    campaign = constructed_campaign(make_campaign, make_user)
    kept = services.write_back_rows(campaign=campaign, rule="drop_disagreements")
    assert sorted(row["source_line"] for row in kept) == [1, 2]
    followed = {row["source_line"]: row for row in services.write_back_rows(campaign=campaign, rule="follow_humans")}
    assert sorted(followed) == [1, 2, 3]
    flipped = followed[3]
    assert flipped["flipped"] is True
    assert flipped["chosen"].startswith("Weak answer 3") and flipped["rejected"].startswith("Good answer 3")
    assert flipped["chosen_config"] == SECRET_CONFIG_BAD and flipped["rejected_config"] == SECRET_CONFIG_GOOD
    assert flipped["human_votes"] == "2/2"

    artifact = services.campaign_write_back(campaign=campaign, rule="follow_humans")
    assert artifact.kind == "preferences" and artifact.run is None and artifact.row_count == 3
    lines = Path(artifact.jsonl_path).read_text().splitlines()
    assert {"prompt", "chosen", "rejected"} <= set(json.loads(lines[0]))
    assert Path(artifact.parquet_path).exists()


def test_write_back_refuses_when_nothing_qualifies(make_campaign, make_user):
    campaign = make_campaign(assignees=[make_user("annotator")], rows=preference_rows(2), overlap=1)
    with pytest.raises(ValidationError, match="No judged pair qualifies"):
        services.campaign_write_back(campaign=campaign, rule="follow_humans")


def test_evaluation_pairs_use_judge_verdict_as_the_machine_label(make_campaign, make_user):
    rows = [
        {"prompt": f"q{i}", "response_a": f"x{i}", "response_b": f"y{i}", "model_a": "m1", "model_b": "m2",
         "judge_verdict": "B" if i % 2 else "A"}
        for i in range(1, 5)
    ]
    ann = make_user("annotator")
    campaign = make_campaign(assignees=[ann], rows=rows, overlap=1, group_by="config_pair")
    assert campaign.pair_format == Campaign.PairFormat.EVALUATION
    labels = dict(campaign.items.values_list("source_line", "synthetic_label"))
    assert labels == {1: "b", 2: "a", 3: "b", 4: "a"}
    assert set(campaign.items.values_list("group", flat=True)) == {"m1 vs m2"}
    while judge_next(campaign, ann, "a") is not None:
        pass
    rows_out = services.write_back_rows(campaign=campaign, rule="drop_disagreements")
    assert sorted(row["source_line"] for row in rows_out) == [2, 4]
    assert all(row["chosen"].startswith("x") for row in rows_out)
    assert choice_for(campaign.items.first(), "tie") == "tie"


def test_pairs_without_configurations_get_no_breakdown_under_the_default_grouping(make_campaign, make_user):
    rows = [{"prompt": f"q{i}", "chosen": "real answer", "rejected": "generated answer"} for i in range(3)]  # SPIN-like
    campaign = make_campaign(assignees=[make_user("annotator")], rows=rows, overlap=1, group_by="config_pair")
    assert campaign.group_by == "" and set(campaign.items.values_list("group", flat=True)) == {""}
    with pytest.raises(ValidationError, match="`config_pair`"):
        make_campaign(assignees=[make_user("annotator")], rows=rows, overlap=1, group_by="config_pair", sampling="stratified")


def test_a_submission_key_already_used_by_someone_else_is_refused_and_stores_nothing(make_campaign, make_user):
    """The key's own lookup is gone from the common path; a reused key is caught by its unique constraint."""
    ann, bob = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[ann, bob], rows=preference_rows(4), overlap=1)
    anns = judge_next(campaign, ann, "a")
    bobs_item = services.assignment_next(campaign=campaign, annotator=bob)
    with pytest.raises(PermissionDenied):
        services.judgment_submit(
            campaign=campaign, annotator=bob, item_id=bobs_item.pk, choice="left", submission_key=anns.submission_key
        )
    assert list(Judgment.objects.values_list("annotator", flat=True)) == [ann.pk]
    # The same key sent again after an undo (a browser retry) answers with the stored row, adding none.
    services.judgment_undo(campaign=campaign, annotator=ann)
    again = services.judgment_submit(
        campaign=campaign, annotator=ann, item_id=anns.item_id, choice="right", submission_key=anns.submission_key
    )
    assert again == anns and Judgment.objects.count() == 1


def test_progress_counts_judged_left_time_and_undone_per_campaign(make_campaign, make_user):
    """The workspace header's figures, computed in one statement, stay per campaign and per annotator."""
    from webapp.annotation.selectors import annotator_progress

    ann, bob = make_user("annotator"), make_user("annotator")
    first = make_campaign(assignees=[ann, bob], rows=preference_rows(5), overlap=1)
    second = make_campaign(assignees=[ann], rows=preference_rows(4), overlap=1)
    judge_next(first, ann, "a", seconds_spent=2.5)
    judge_next(first, ann, "b", seconds_spent=4.0)
    judge_next(first, bob, "a")  # takes the only slot of a third item
    services.assignment_next(campaign=first, annotator=bob)  # and leases a fourth
    progress = annotator_progress(campaign=first, annotator=ann)
    assert (progress["judged"], progress["left"], progress["seconds"], progress["withdrawn"]) == (2, 1, 6.5, 0)
    assert progress["total"] == 3 and progress["percent"] == 67 and progress["can_undo"]
    services.judgment_undo(campaign=first, annotator=ann)
    progress = annotator_progress(campaign=first, annotator=ann)
    assert (progress["judged"], progress["left"], progress["seconds"], progress["withdrawn"]) == (1, 2, 2.5, 1)
    # Judgments in the first campaign count nowhere in the second.
    assert annotator_progress(campaign=second, annotator=ann) | {"can_undo": None} == {
        "judged": 0, "left": 4, "total": 4, "percent": 0, "seconds": 0.0, "can_undo": None, "withdrawn": 0,
    }

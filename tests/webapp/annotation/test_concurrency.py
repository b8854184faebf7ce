"""Concurrent claims on a real PostgreSQL: annotators working at once never receive an item beyond the overlap.

Each thread is one annotator with its own database connection, so the row locks (`FOR UPDATE SKIP
LOCKED`) and the recount under the lock are exercised for real.
"""
from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection, connections

from webapp.annotation import services
from webapp.annotation.models import Assignment, Judgment

from .conftest import preference_rows

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (row locks with SKIP LOCKED); set DATABASE_URL=postgres://... to run it",
)


def _run_annotators(users, work) -> list[BaseException]:
    """Start one thread per annotator at the same instant; each closes its own connection."""
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def body(user):
        try:
            barrier.wait(timeout=30)
            work(user)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_simultaneous_claims_hand_each_slot_to_exactly_one_annotator(transactional_db, make_campaign, make_user):
    users = [make_user("annotator") for _ in range(8)]
    campaign = make_campaign(assignees=users, rows=preference_rows(3), overlap=2)
    claimed: dict[int, int | None] = {}

    def claim(user):
        item = services.assignment_next(campaign=campaign, annotator=user)
        claimed[user.pk] = item.pk if item else None

    assert _run_annotators(users, claim) == []
    per_item = Counter(item_id for item_id in claimed.values() if item_id is not None)
    assert sorted(per_item.values()) == [2, 2, 2], "3 items x overlap 2 = 6 slots for 8 annotators"
    assert list(claimed.values()).count(None) == 2


def test_annotators_judging_at_once_fill_every_item_exactly_to_the_overlap(transactional_db, make_campaign, make_user):
    users = [make_user("annotator") for _ in range(6)]
    campaign = make_campaign(assignees=users, rows=preference_rows(10), overlap=3)
    max_holders_seen = Counter()

    def judge_until_done(user):
        while True:
            item = services.assignment_next(campaign=campaign, annotator=user)
            if item is None:
                return
            holders = Assignment.objects.filter(item=item).filter(Assignment.holding_slot(services.timezone.now())).count()
            max_holders_seen[item.pk] = max(max_holders_seen[item.pk], holders)
            services.judgment_submit(
                campaign=campaign, annotator=user, item_id=item.pk, choice="left", submission_key=uuid.uuid4().hex
            )

    assert _run_annotators(users, judge_until_done) == []
    per_item = Counter(Judgment.objects.filter(withdrawn_at__isnull=True).values_list("item_id", flat=True))
    assert len(per_item) == 10 and set(per_item.values()) == {3}
    assert max(max_holders_seen.values()) <= 3
    pairs = Judgment.objects.values_list("item_id", "annotator_id")
    assert len(pairs) == len(set(pairs)) == 30, "no annotator judged an item twice"

"""Reads of the annotation app, with the access rules: who may open which campaign, and what each role sees.

Annotators reach a campaign only when assigned to it; a campaign they are not assigned to, or one that
does not exist, is refused alike (403), so ids reveal nothing. Researchers get 404 for a missing one.
"""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, FloatField, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from . import stats
from .models import Assignment, Campaign, Item, Judgment


def campaign_list() -> QuerySet[Campaign]:
    """All campaigns for researchers, with item and judgment counts."""
    return (
        Campaign.objects.select_related("artifact", "rubric", "created_by")
        .annotate(
            item_count=Count("items", distinct=True),
            judgment_count=Count(
                "items__judgments", filter=Q(items__judgments__withdrawn_at__isnull=True), distinct=True
            ),
            assignee_count=Count("assignees", distinct=True),
        )
        .order_by("-created_at")
    )


def campaign_get(*, campaign_id: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("artifact", "rubric"), pk=campaign_id)


def campaign_for_annotator(*, campaign_id: int, user: Any) -> Campaign:
    """The campaign if `user` is assigned to it; 403 otherwise (404 only for researchers, for a missing id).

    One query: the assignee check rides along as an EXISTS (every workspace request starts here).
    """
    is_assignee = Campaign.assignees.through.objects.filter(campaign_id=OuterRef("pk"), user_id=user.pk)
    campaign = (
        Campaign.objects.select_related("rubric")
        .annotate(user_is_assignee=Exists(is_assignee))
        .filter(pk=campaign_id)
        .first()
    )
    if campaign is None:
        if user.is_researcher_role:
            raise Http404("No such campaign.")
        raise PermissionDenied("This campaign is not assigned to you.")
    if not campaign.user_is_assignee:
        raise PermissionDenied("This campaign is not assigned to you.")
    return campaign


def _judged_by(annotator: Any) -> QuerySet[Assignment]:
    """Ids of the items the annotator has judged (a completed assignment), in any campaign.

    Used as `NOT IN (...)`, which PostgreSQL runs as one hashed scan of the annotator's assignments;
    the equivalent NOT EXISTS became a nested-loop anti-join over every item whenever the planner's
    estimate for a new campaign was off (150 ms instead of a few on 2,500 items).
    """
    # Not joined to the campaign's items: the outer query already is, and the join misplanned the same way.
    return Assignment.objects.filter(annotator=annotator, completed_at__isnull=False).values("item_id")


def _slots_taken_by_others(annotator: Any, now: datetime) -> Coalesce:
    """Per item (OuterRef): assignments of other annotators holding one of its overlap slots at `now`."""
    others_holding = (
        Assignment.objects.filter(item=OuterRef("pk"))
        .filter(Assignment.holding_slot(now))
        .exclude(annotator=annotator)
        .order_by()
        .values("item")
        .annotate(taken=Count("pk"))
        .values("taken")
    )
    return Coalesce(Subquery(others_holding, output_field=IntegerField()), Value(0))


def open_items(*, campaign: Campaign, annotator: Any, now: datetime) -> QuerySet[Item]:
    """Items this annotator has not judged whose other holders leave a slot free (as of this statement)."""
    return (
        Item.objects.filter(campaign=campaign)
        .exclude(pk__in=_judged_by(annotator))
        .annotate(taken=_slots_taken_by_others(annotator, now))
        .filter(taken__lt=campaign.overlap)
        .order_by("position")
    )


def annotator_progress(*, campaign: Campaign, annotator: Any, now: datetime | None = None) -> dict[str, Any]:
    """What the workspace header shows: judged so far, items still open to this annotator, time spent.

    One statement (it runs on every judgment): the campaign's row with four scalar subqueries, each
    evaluated once. `left` counts what `open_items` would return; `judged` and `seconds` the
    annotator's current judgments; `withdrawn` their undone ones, so the workspace looks for an
    earlier answer only when there is one.
    """
    now = now or timezone.now()

    def count_of(queryset: QuerySet[Any], group: str) -> Coalesce:
        counted = queryset.order_by().values(group).annotate(count=Count("pk")).values("count")
        return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))

    mine = Judgment.objects.filter(item__campaign=OuterRef("pk"), annotator=annotator)
    current = mine.filter(withdrawn_at__isnull=True)
    seconds = current.order_by().values("annotator").annotate(total=Sum("seconds_spent")).values("total")
    open_to_annotator = (
        Item.objects.filter(campaign=OuterRef("pk"))
        .exclude(pk__in=_judged_by(annotator))
        .annotate(taken=_slots_taken_by_others(annotator, now))
        .filter(taken__lt=campaign.overlap)
    )
    totals = (
        Campaign.objects.filter(pk=campaign.pk)
        .annotate(
            judged=count_of(current, "annotator"),
            seconds=Subquery(seconds, output_field=FloatField()),
            withdrawn=count_of(mine.filter(withdrawn_at__isnull=False), "annotator"),
            left=count_of(open_to_annotator, "campaign"),
        )
        .values("judged", "seconds", "withdrawn", "left")
        .get()
    )
    judged, seconds_spent = totals["judged"], totals["seconds"] or 0.0
    left = totals["left"] if campaign.is_open else 0
    total = judged + left
    return {
        "judged": judged,
        "left": left,
        "total": total,
        "percent": round(100 * judged / total) if total else 100,
        "seconds": seconds_spent,
        "can_undo": judged > 0 and campaign.is_open,
        "withdrawn": totals["withdrawn"],
    }


def withdrawn_judgment(*, item: Item, annotator: Any) -> Judgment | None:
    """The annotator's latest undone answer on this item, shown again so they see what they had said."""
    return (
        Judgment.objects.filter(item=item, annotator=annotator, withdrawn_at__isnull=False)
        .order_by("-withdrawn_at")
        .first()
    )


def campaigns_for_annotator(*, user: Any) -> list[dict[str, Any]]:
    """The annotator's start page: each assigned campaign with their own progress."""
    now = timezone.now()
    return [
        {"campaign": campaign, "progress": annotator_progress(campaign=campaign, annotator=user, now=now)}
        for campaign in Campaign.objects.filter(assignees=user).select_related("rubric").order_by("-created_at")
    ]


def campaign_item_votes(*, campaign: Campaign) -> list[stats.ItemVotes]:
    """Every item with its current (not withdrawn) human verdicts keyed by annotator name."""
    votes: dict[int, dict[str, str]] = {}
    for item_id, username, verdict in Judgment.objects.filter(
        item__campaign=campaign, withdrawn_at__isnull=True
    ).values_list("item_id", "annotator__username", "verdict"):
        votes.setdefault(item_id, {})[username] = verdict
    return [
        stats.ItemVotes(item_id=pk, position=position, synthetic_label=label, group=group, votes=votes.get(pk, {}))
        for pk, position, label, group in campaign.items.order_by("position").values_list(
            "pk", "position", "synthetic_label", "group"
        )
    ]


def annotator_table(*, campaign: Campaign, now: datetime | None = None) -> list[dict[str, Any]]:
    """Progress per assigned annotator: judged, undone, time per judgment, flags used, a live lease.

    Three queries whatever the number of annotators (it was three per annotator: 150 for a campaign
    of 50, on a page researchers keep open and reload while the campaign runs).
    """
    now = now or timezone.now()
    current: dict[int, list[tuple[float, list[str]]]] = {}
    withdrawn: dict[int, int] = {}
    for annotator_id, seconds_spent, flags, withdrawn_at in Judgment.objects.filter(
        item__campaign=campaign
    ).values_list("annotator_id", "seconds_spent", "flags", "withdrawn_at"):
        if withdrawn_at is None:
            current.setdefault(annotator_id, []).append((seconds_spent, flags))
        else:
            withdrawn[annotator_id] = withdrawn.get(annotator_id, 0) + 1
    leasing = set(
        Assignment.objects.filter(item__campaign=campaign, completed_at__isnull=True, expires_at__gt=now).values_list(
            "annotator_id", flat=True
        )
    )
    rows = []
    for user_id, username in campaign.assignees.order_by("username").values_list("pk", "username"):
        judged = current.get(user_id, [])
        seconds = [value for value, _ in judged]
        rows.append(
            {
                "username": username,
                "judged": len(judged),
                "withdrawn": withdrawn.get(user_id, 0),
                "median_seconds": statistics.median(seconds) if seconds else None,
                "total_seconds": sum(seconds),
                "flagged": sum(1 for _, flags in judged if flags),
                "has_live_lease": user_id in leasing,
            }
        )
    return rows


def campaign_statistics(*, campaign: Campaign) -> dict[str, Any]:
    """Everything on the statistics page; the agreement figures come from `stats.summarize`."""
    now = timezone.now()
    item_votes = campaign_item_votes(campaign=campaign)
    summary = stats.summarize(item_votes)
    complete = sum(1 for item in item_votes if len(item.votes) >= campaign.overlap)
    flag_counts: dict[str, int] = {}
    for flags in Judgment.objects.filter(item__campaign=campaign, withdrawn_at__isnull=True).values_list(
        "flags", flat=True
    ):
        for flag in flags:
            flag_counts[flag] = flag_counts.get(flag, 0) + 1
    return {
        **summary,
        "items": len(item_votes),
        "complete_items": complete,
        "judgments_needed": len(item_votes) * campaign.overlap,
        "judgments_given": sum(len(item.votes) for item in item_votes),
        "live_leases": Assignment.objects.filter(
            item__campaign=campaign, completed_at__isnull=True, expires_at__gt=now
        ).count(),
        "annotators": annotator_table(campaign=campaign, now=now),
        "flag_counts": flag_counts,
    }


def item_review(*, campaign: Campaign, item_id: int) -> tuple[Item, QuerySet[Judgment]]:
    """One item with every judgment on it, withdrawn ones included (researchers only)."""
    item = get_object_or_404(Item, campaign=campaign, pk=item_id)
    return item, item.judgments.select_related("annotator").order_by("created_at")


def judgment_export_rows(*, campaign: Campaign, include_withdrawn: bool = False) -> list[dict[str, Any]]:
    """One row per judgment with the item's provenance, for CSV/JSON export."""
    judgments = Judgment.objects.filter(item__campaign=campaign).select_related("item", "annotator")
    if not include_withdrawn:
        judgments = judgments.filter(withdrawn_at__isnull=True)
    return [
        {
            "campaign_id": campaign.pk,
            "item_id": j.item_id,
            "position": j.item.position,
            "source_line": j.item.source_line,
            "group": j.item.group,
            "synthetic_label": j.item.synthetic_label,
            "a_on_left": j.item.a_on_left,
            "annotator": j.annotator.username,
            "choice_as_shown": j.choice,
            "verdict": j.verdict,
            "flags": j.flags,
            "comment": j.comment,
            "seconds_spent": round(j.seconds_spent, 2),
            "created_at": j.created_at.isoformat(),
            "withdrawn_at": j.withdrawn_at.isoformat() if j.withdrawn_at else "",
            "prompt": j.item.prompt,
            "response_a": j.item.response_a,
            "response_b": j.item.response_b,
            "provenance": j.item.provenance,
        }
        for j in judgments.order_by("item__position", "created_at")
    ]

"""Writes of the annotation app: create campaigns, hand out items under leases, record and undo judgments,
and write the human-checked pairs back as a new preference artifact.

Assignment rule: an item has `overlap` slots; an assignment holds a slot while it is completed or its
lease has not expired. Claims lock the item row (`SELECT ... FOR UPDATE SKIP LOCKED`) and recount the
slots after the lock is held, so concurrent annotators never receive an item beyond the overlap.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from pipelines.common.store import RunStore
from pipelines.common.tables import write_table
from webapp.library.models import Artifact, Rubric
from webapp.webhooks.services import webhooks_campaign_judged

from . import pairs
from .models import Assignment, Campaign, Item, Judgment, Verdict
from .selectors import campaign_item_votes, open_items

MAX_SAMPLE_SIZE = 100_000
MAX_SECONDS_PER_JUDGMENT = 6 * 3600.0
WRITE_BACK_RULES = {
    "drop_disagreements": "Keep only pairs whose synthetic label the human majority confirmed",
    "follow_humans": "Keep every pair with a human majority for one side, ordered as the humans say (flips reversed pairs)",
}


class LeaseLost(Exception):
    """The annotator's lease expired and the item's slots went to others; the judgment was not stored."""


class CampaignClosed(Exception):
    """The campaign was closed by a researcher; it takes no more judgments."""


# ---------------------------------------------------------------- campaigns


def campaign_create_from_form(*, user: Any, data: dict[str, Any]) -> Campaign:
    """Create a campaign from `CampaignForm`'s cleaned data: the page and the JSON API share this mapping."""
    return campaign_create(
        user=user,
        name=data["name"],
        artifact=data["artifact"],
        rubric=data["rubric"],
        sample_size=data["sample_size"],
        sampling=data["sampling"],
        group_by=data["group_by"].strip(),
        overlap=data["overlap"],
        lease_minutes=data["lease_minutes"],
        flags=data["flags"],
        ask_comment=data["ask_comment"],
        assignees=list(data["assignees"]),
        seed=data["seed"],
    )


def campaign_create(
    *,
    user: Any,
    name: str,
    artifact: Artifact,
    rubric: Rubric,
    sample_size: int,
    overlap: int,
    assignees: Sequence[Any],
    sampling: str = Campaign.Sampling.RANDOM,
    group_by: str = "",
    flags: Sequence[str] = (),
    ask_comment: bool = True,
    lease_minutes: int = 20,
    seed: int | None = None,
) -> Campaign:
    """Sample the artifact's pairs into a new campaign; any problem raises ValidationError and saves nothing."""
    problems: dict[str, str] = {}
    assignees = list(dict.fromkeys(assignees))
    if not name.strip():
        problems["name"] = "Give the campaign a name."
    if not 1 <= sample_size <= MAX_SAMPLE_SIZE:
        problems["sample_size"] = f"Sample size must be between 1 and {MAX_SAMPLE_SIZE}."
    if overlap < 1:
        problems["overlap"] = "Overlap must be at least 1 (annotators per item)."
    elif overlap > len(assignees):
        problems["overlap"] = f"Overlap {overlap} needs at least {overlap} annotators; {len(assignees)} assigned."
    if lease_minutes < 1:
        problems["lease_minutes"] = "A lease must last at least one minute."
    if sampling not in Campaign.Sampling.values:
        problems["sampling"] = f"Unknown sampling {sampling!r}."
    elif sampling == Campaign.Sampling.STRATIFIED and not group_by:
        problems["group_by"] = (
            "Stratified sampling needs a column to stratify by (e.g. config_pair or a filter verdict)."
        )
    clean_flags = [flag.strip() for flag in flags if flag.strip()]
    if len(set(clean_flags)) != len(clean_flags):
        problems["flags"] = "Each flag may appear once."
    if problems:
        raise ValidationError(problems)

    path = Path(artifact.jsonl_path)
    try:
        pair_format = pairs.detect_format(path)
        seed = seed if seed is not None else secrets.randbelow(2**31)
        rng = random.Random(seed)
        sample, population = pairs.sample_pairs(
            pairs.iter_pairs(path, pair_format),
            size=sample_size,
            group_by=group_by,
            stratified=sampling == Campaign.Sampling.STRATIFIED,
            rng=rng,
        )
    except pairs.PairProblem as problem:
        raise ValidationError({"artifact": str(problem)}) from None
    if group_by and sample and all(group == pairs.MISSING_GROUP for _, group in sample):
        if group_by == pairs.CONFIG_PAIR and sampling == Campaign.Sampling.RANDOM:
            # The form's default: pairs without configurations (e.g. SPIN's) simply get no breakdown.
            group_by, sample = "", [(pair, "") for pair, _ in sample]
        else:
            raise ValidationError({"group_by": f"No sampled row of “{artifact.name}” has a `{group_by}` value."})

    with transaction.atomic():
        campaign = Campaign(
            name=name.strip(),
            artifact=artifact,
            rubric=rubric,
            pair_format=pair_format,
            flags=clean_flags,
            ask_comment=ask_comment,
            sample_size=sample_size,
            sampling=sampling,
            group_by=group_by,
            seed=seed,
            overlap=overlap,
            lease_minutes=lease_minutes,
            source_row_count=population,
            created_by=user,
        )
        campaign.full_clean()
        campaign.save()
        campaign.assignees.set(assignees)
        Item.objects.bulk_create(
            Item(
                campaign=campaign,
                position=position,
                source_line=pair.line,
                prompt=pair.prompt,
                response_a=pair.response_a,
                response_b=pair.response_b,
                a_on_left=rng.random() < 0.5,
                synthetic_label=pair.synthetic_label,
                group=group,
                provenance=pair.provenance,
            )
            for position, (pair, group) in enumerate(sample, start=1)
        )
    return campaign


def campaign_set_open(*, campaign: Campaign, is_open: bool) -> Campaign:
    """Close (no more items handed out or judged) or reopen a campaign."""
    campaign.is_open = is_open
    campaign.save(update_fields=["is_open"])
    return campaign


# ---------------------------------------------------------------- assignment


def _lease_end(campaign: Campaign, now: datetime) -> datetime:
    return now + timedelta(minutes=campaign.lease_minutes)


def _slots_taken(item_id: int, *, now: datetime, excluding_annotator_id: int) -> int:
    return (
        Assignment.objects.filter(item_id=item_id)
        .filter(Assignment.holding_slot(now))
        .exclude(annotator_id=excluding_annotator_id)
        .count()
    )


def assignment_current(*, campaign: Campaign, annotator: Any, now: datetime | None = None) -> Assignment | None:
    """The annotator's live, unjudged lease in this campaign (the newest, e.g. an undone item), if any."""
    now = now or timezone.now()
    return (
        Assignment.objects.filter(
            item__campaign=campaign, annotator=annotator, completed_at__isnull=True, expires_at__gt=now
        )
        .select_related("item")
        .order_by("-leased_at", "-pk")
        .first()
    )


def assignment_next(*, campaign: Campaign, annotator: Any, now: datetime | None = None) -> Item | None:
    """The item this annotator should judge now, leased to them; None when nothing is left for them.

    A live lease is renewed and returned (a reload shows the same item). Otherwise the first open
    item by position is locked, skipping items another request holds locked; its slots are counted
    again under the lock (a fresh statement sees every committed claim), and a full item is passed over.
    """
    now = now or timezone.now()
    if not campaign.is_open:
        return None
    with transaction.atomic():
        current = assignment_current(campaign=campaign, annotator=annotator, now=now)
        if current is not None:
            Assignment.objects.filter(pk=current.pk).update(expires_at=_lease_end(campaign, now))
            return current.item
        passed_over: set[int] = set()
        while True:
            candidates = open_items(campaign=campaign, annotator=annotator, now=now).exclude(pk__in=passed_over)
            item = candidates.select_for_update(skip_locked=True, of=("self",)).first()
            if item is None:
                # Every open item may be locked by a claim in flight: wait for one rather than say "done".
                item = candidates.select_for_update(of=("self",)).first()
            if item is None:
                return None
            if _slots_taken(item.pk, now=now, excluding_annotator_id=annotator.pk) >= campaign.overlap:
                passed_over.add(item.pk)
                continue
            # The item row is locked, so no one else writes this (item, annotator) pair meanwhile; one
            # upsert renews an old (expired) assignment or creates the first.
            Assignment.objects.bulk_create(
                [
                    Assignment(
                        item=item,
                        annotator=annotator,
                        leased_at=now,
                        expires_at=_lease_end(campaign, now),
                        completed_at=None,
                    )
                ],
                update_conflicts=True,
                unique_fields=["item", "annotator"],
                update_fields=["leased_at", "expires_at", "completed_at"],
            )
            return item


def assignments_release_expired(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Delete expired, unjudged leases (housekeeping: expired leases already free their slot)."""
    now = now or timezone.now()
    deleted, _ = Assignment.objects.filter(
        item__campaign=campaign, completed_at__isnull=True, expires_at__lte=now
    ).delete()
    return deleted


# ---------------------------------------------------------------- judgments


def judgment_submit(
    *,
    campaign: Campaign,
    annotator: Any,
    item_id: int,
    choice: str,
    submission_key: str,
    flags: Iterable[str] = (),
    comment: str = "",
    seconds_spent: float = 0.0,
    now: datetime | None = None,
) -> Judgment:
    """Store one judgment exactly once; a repeated submission (same key, or the same item again) returns the stored one.

    Raises PermissionDenied for an item not leased to this annotator, LeaseLost when an expired lease's
    slot went to someone else, CampaignClosed, and ValidationError for a malformed answer.
    """
    now = now or timezone.now()
    if choice not in Judgment.Choice.values:
        raise ValidationError({"choice": f"Choose one of {', '.join(Judgment.Choice.values)}; got {choice!r}."})
    submission_key = submission_key.strip()
    if not 8 <= len(submission_key) <= 64:
        raise ValidationError({"submission_key": "A submission key of 8 to 64 characters is required."})
    chosen_flags = list(dict.fromkeys(flags))
    unknown = [flag for flag in chosen_flags if flag not in campaign.flags]
    if unknown:
        raise ValidationError({"flags": f"Unknown flag(s) for this campaign: {', '.join(unknown)}."})
    comment = comment.strip() if campaign.ask_comment else ""
    seconds_spent = min(max(float(seconds_spent or 0.0), 0.0), MAX_SECONDS_PER_JUDGMENT)

    if not campaign.is_open:
        earlier = _judgment_by_submission_key(submission_key, campaign=campaign, annotator=annotator)
        if earlier is not None:
            return earlier
        raise CampaignClosed("This campaign is closed; it takes no more judgments.")
    # A repeated key is found without a lookup of its own (every judgment would pay for it): a retry
    # after success finds the completed assignment below, and any other reuse trips the key's unique
    # constraint and is resolved in the IntegrityError handler.
    try:
        with transaction.atomic():
            # One statement: this annotator's assignment with its item, the item row locked.
            assignment = (
                Assignment.objects.select_related("item")
                .select_for_update(of=("item",))
                .filter(item__campaign=campaign, item_id=item_id, annotator=annotator)
                .first()
            )
            if assignment is None:
                raise PermissionDenied("This item was not given to you.")
            item = assignment.item
            if assignment.completed_at is not None:
                current = Judgment.objects.filter(item=item, annotator=annotator, withdrawn_at__isnull=True).first()
                if current is not None:
                    return current
            lease_expired = assignment.completed_at is None and assignment.expires_at <= now
            if (
                lease_expired
                and _slots_taken(item.pk, now=now, excluding_annotator_id=annotator.pk) >= campaign.overlap
            ):
                raise LeaseLost("Your time on this item ran out and it went to another annotator; nothing was stored.")
            judgment = Judgment(
                item=item,
                annotator=annotator,
                choice=choice,
                verdict=item.verdict_for_choice(choice),
                flags=chosen_flags,
                comment=comment,
                seconds_spent=seconds_spent,
                submission_key=submission_key,
                created_at=now,
            )
            # item and annotator were just loaded: skip full_clean's extra existence queries for them.
            judgment.full_clean(exclude=["item", "annotator"], validate_unique=False, validate_constraints=False)
            judgment.save()
            Assignment.objects.filter(pk=assignment.pk).update(completed_at=now)
            # The judgment that completes the campaign raises campaign.completed, once, after commit.
            transaction.on_commit(
                lambda: webhooks_campaign_judged(campaign_id=campaign.pk, owner_id=campaign.created_by_id), robust=True
            )
            return judgment
    except IntegrityError:
        # The key was used before (a retry racing the first request, or a resubmission after undo):
        # the stored row is the answer.
        stored = _judgment_by_submission_key(submission_key, campaign=campaign, annotator=annotator)
        if stored is None:
            raise
        return stored


def _judgment_by_submission_key(submission_key: str, *, campaign: Campaign, annotator: Any) -> Judgment | None:
    """The judgment stored under this key, if any; PermissionDenied when it is someone else's."""
    earlier = Judgment.objects.select_related("item").filter(submission_key=submission_key).first()
    if earlier is not None and (earlier.annotator_id != annotator.pk or earlier.item.campaign_id != campaign.pk):
        raise PermissionDenied("That submission belongs to someone else.")
    return earlier


def judgment_undo(*, campaign: Campaign, annotator: Any, now: datetime | None = None) -> Judgment | None:
    """Withdraw the annotator's latest judgment (kept as history) and lease its item back to them."""
    now = now or timezone.now()
    if not campaign.is_open:
        raise CampaignClosed("This campaign is closed; its judgments can no longer change.")
    with transaction.atomic():
        last = (
            Judgment.objects.select_for_update()
            .filter(item__campaign=campaign, annotator=annotator, withdrawn_at__isnull=True)
            .order_by("-created_at", "-pk")
            .first()
        )
        if last is None:
            return None
        Item.objects.select_for_update().filter(pk=last.item_id).first()
        last.withdrawn_at = now
        last.save(update_fields=["withdrawn_at"])
        # The slot stays with this annotator: a completed assignment becomes a fresh lease.
        Assignment.objects.filter(item_id=last.item_id, annotator=annotator).update(
            completed_at=None, leased_at=now, expires_at=_lease_end(campaign, now)
        )
    return last


# ---------------------------------------------------------------- verdicts back into the data


def _swap_sides(provenance: dict[str, Any]) -> dict[str, Any]:
    """Provenance of a flipped pair: `chosen_config` becomes `rejected_config` and the other way round."""
    prefixes = {"chosen_": "rejected_", "rejected_": "chosen_"}
    swapped = {key: value for key, value in provenance.items() if not key.startswith(tuple(prefixes))}
    for key, value in provenance.items():
        for prefix, other in prefixes.items():
            if key.startswith(prefix):
                swapped[other + key[len(prefix) :]] = value
    return swapped


def write_back_rows(*, campaign: Campaign, rule: str) -> list[dict[str, Any]]:
    """The checked pairs as prompt/chosen/rejected rows under `rule` (see WRITE_BACK_RULES)."""
    if rule not in WRITE_BACK_RULES:
        raise ValidationError({"rule": f"Unknown rule {rule!r}; choose {', '.join(WRITE_BACK_RULES)}."})
    items = {item.pk: item for item in campaign.items.all()}
    rows = []
    for votes in campaign_item_votes(campaign=campaign):
        human = votes.human_majority
        if human not in (Verdict.A, Verdict.B):
            continue
        if rule == "drop_disagreements" and human != votes.synthetic_label:
            continue
        item = items[votes.item_id]
        flipped = campaign.pair_format == Campaign.PairFormat.PREFERENCE and human == Verdict.B
        extra = _swap_sides(item.provenance) if flipped else dict(item.provenance)
        chosen, rejected = (
            (item.response_a, item.response_b) if human == Verdict.A else (item.response_b, item.response_a)
        )
        if campaign.pair_format == Campaign.PairFormat.EVALUATION:
            extra["chosen_side"] = human
        rows.append(
            {
                **extra,
                "prompt": item.prompt,
                "chosen": chosen,
                "rejected": rejected,
                "human_verdict": human,
                "human_votes": f"{list(votes.votes.values()).count(human)}/{len(votes.votes)}",
                "synthetic_label": votes.synthetic_label,
                "flipped": flipped,
                "source_line": item.source_line,
                "campaign_id": campaign.pk,
            }
        )
    return rows


def campaign_write_back(*, campaign: Campaign, rule: str) -> Artifact:
    """Write the human-checked pairs as a new preference artifact (JSONL + parquet) for training."""
    from webapp.runs.services import artifact_register

    rows = write_back_rows(campaign=campaign, rule=rule)
    if not rows:
        raise ValidationError({"rule": "No judged pair qualifies yet: wait for judgments with a clear human majority."})
    directory = Path(settings.ARTIFACT_ROOT) / "annotation" / f"campaign-{campaign.pk}" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    parquet_path: Path | None
    try:
        table = write_table(directory / "data.jsonl", rows)
        jsonl_path, parquet_path = table.jsonl_path, table.parquet_path
    except (ImportError, ValueError, TypeError):
        # Mixed provenance types fit no parquet schema: the JSONL alone is still complete and loadable.
        jsonl_path, parquet_path = RunStore(directory).write_jsonl(rows, "data.jsonl"), None
    stamp = timezone.localtime().strftime("%Y-%m-%d %H:%M:%S")
    name = f"{campaign.name}: human-checked ({rule}, {len(rows)} pairs, {stamp})"
    return artifact_register(
        run=None, name=name[:200], kind=Artifact.Kind.PREFERENCES, jsonl_path=jsonl_path, parquet_path=parquet_path
    )

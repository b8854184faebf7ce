"""Registering hooks (the URL policy, scopes) and raising events: one delivery per event and hook, public fields only."""

from __future__ import annotations

import json
from typing import Any

import django_rq
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tests.webapp.annotation.conftest import judge_next
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.webhooks import services
from webapp.webhooks.models import Event, Webhook, WebhookDelivery

SECRET_IN_CONFIG = "config-SECRET-value-never-sent"


@pytest.fixture
def queued_jobs(live_settings: Any):
    """The real test Redis takes the enqueued delivery jobs (no worker runs them here); emptied afterwards."""
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def _running_run(owner: Any, **fields: Any) -> PipelineRun:
    fields = {"status": PipelineRun.Status.RUNNING, **fields}
    return PipelineRun.objects.create(
        kind="generate",
        name="webhook test run",
        config={"api_key_env": SECRET_IN_CONFIG},
        created_by=owner,
        queue_name="default",
        started_at=timezone.now(),
        **fields,
    )


@pytest.mark.django_db
def test_a_hook_to_this_machine_is_refused_with_the_setting_to_change(researcher, settings):
    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://192.168.0.4/"):
        with pytest.raises(ValidationError) as refused:
            services.webhook_create(owner=researcher, url=url, events=[Event.RUN_SUCCEEDED])
        message = refused.value.message_dict["url"][0]
        assert "this machine or a private network" in message and "REFINERY_WEBHOOK_ALLOW_PRIVATE=1" in message
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_metadata_and_link_local_addresses_are_refused_even_when_private_ones_are_allowed(researcher, allow_private):
    with pytest.raises(ValidationError, match="link-local"):
        services.webhook_create(owner=researcher, url="http://169.254.169.254/latest", events=[Event.RUN_FAILED])
    with pytest.raises(ValidationError, match="http:// or https://"):
        services.webhook_url_check("file:///etc/passwd")
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_events_must_be_known_and_only_admins_hear_every_users_runs(researcher, admin_user, allow_private):
    with pytest.raises(ValidationError, match="Unknown event"):
        services.webhook_create(owner=researcher, url="http://127.0.0.1:9/", events=["run.exploded"])
    with pytest.raises(ValidationError, match="Only admins"):
        services.webhook_create(owner=researcher, url="http://127.0.0.1:9/", events=["run.failed"], scope="all")
    hook = services.webhook_create(owner=admin_user, url="http://127.0.0.1:9/", events=["run.failed"], scope="all")
    assert hook.scope == Webhook.Scope.ALL and hook.secret.startswith("whsec_")


@pytest.mark.django_db
def test_a_finished_run_raises_one_delivery_per_matching_hook_and_only_once(
    researcher, make_user, admin_user, make_webhook, queued_jobs, django_capture_on_commit_callbacks
):
    mine = make_webhook(researcher)
    only_failures = make_webhook(researcher, events=[Event.RUN_FAILED])
    someone_elses = make_webhook(make_user("researcher"))
    admins_all = make_webhook(admin_user, scope=Webhook.Scope.ALL)
    run = _running_run(researcher)

    with django_capture_on_commit_callbacks(execute=True):
        assert run_services.run_mark_succeeded(run_id=run.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhooks_run_finished(run_id=run.pk)  # raised again: nothing new

    deliveries = WebhookDelivery.objects.filter(event=Event.RUN_SUCCEEDED)
    assert sorted(delivery.webhook_id for delivery in deliveries) == sorted([mine.pk, admins_all.pk])
    assert not WebhookDelivery.objects.filter(webhook__in=[only_failures, someone_elses]).exists()
    assert queued_jobs.count == 2
    payload = deliveries.get(webhook=mine).payload
    assert payload["event"] == "run.succeeded"
    assert payload["run"]["id"] == run.pk and payload["run"]["status"] == "succeeded"
    assert payload["delivery"] == deliveries.get(webhook=mine).pk
    assert SECRET_IN_CONFIG not in json.dumps(payload) and "config" not in payload["run"]


@pytest.mark.django_db
def test_failed_and_cancelled_runs_raise_their_own_events(
    researcher, make_webhook, queued_jobs, django_capture_on_commit_callbacks
):
    hook = make_webhook(researcher)
    failing, running = _running_run(researcher), _running_run(researcher)
    queued = _running_run(researcher, status=PipelineRun.Status.QUEUED)
    with django_capture_on_commit_callbacks(execute=True):
        run_services.run_mark_failed(run_id=failing.pk, error="CUDA out of memory")
        run_services.run_request_cancel(run=queued)
        run_services.run_request_cancel(run=running)  # running: not over until the worker stops it
    events = dict(hook.deliveries.values_list("subject", "event"))
    assert events == {f"run:{failing.pk}:1": "run.failed", f"run:{queued.pk}:1": "run.cancelled"}
    assert hook.deliveries.get(event="run.failed").payload["run"]["error"] == "CUDA out of memory"
    with django_capture_on_commit_callbacks(execute=True):
        run_services.run_mark_cancelled(run_id=running.pk)
    assert hook.deliveries.filter(subject=f"run:{running.pk}:1", event="run.cancelled").count() == 1


@pytest.mark.django_db
def test_a_campaign_raises_completed_once_with_its_last_judgment(
    researcher, make_user, make_campaign, make_webhook, queued_jobs, django_capture_on_commit_callbacks
):
    first, second = make_user("annotator"), make_user("annotator")
    campaign = make_campaign(assignees=[first, second], overlap=2)
    hook = make_webhook(researcher, events=[Event.CAMPAIGN_COMPLETED])
    items = campaign.items.count()
    for judged in range(2 * items):
        with django_capture_on_commit_callbacks(execute=True):
            judge_next(campaign, first if judged < items else second, "a")
        expected = 1 if judged == 2 * items - 1 else 0
        assert hook.deliveries.count() == expected, f"after judgment {judged + 1} of {2 * items}"
    with django_capture_on_commit_callbacks(execute=True):
        services.webhooks_campaign_judged(campaign_id=campaign.pk, owner_id=researcher.pk)
    delivery = hook.deliveries.get()
    assert delivery.event == "campaign.completed" and delivery.subject == f"campaign:{campaign.pk}"
    assert delivery.payload["campaign"] == {**delivery.payload["campaign"], "items": items, "judgments": 2 * items}
    assert "SECRET" not in json.dumps(delivery.payload)  # the pairs' configs stay out


@pytest.mark.django_db
def test_deleting_is_for_the_owner_or_an_admin(researcher, make_user, admin_user, make_webhook):
    from django.core.exceptions import PermissionDenied

    hook = make_webhook(researcher)
    with pytest.raises(PermissionDenied):
        services.webhook_delete(webhook=hook, user=make_user("researcher"))
    services.webhook_delete(webhook=hook, user=admin_user)
    assert not Webhook.objects.exists()

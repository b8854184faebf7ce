"""Webhook deliveries through a real rqworker (with RQ's scheduler) to a real HTTP receiver on 127.0.0.1.

The worker gets REFINERY_WEBHOOK_ALLOW_PRIVATE=1 (the receiver is on this machine, which the default
policy refuses) and one-second retry delays, so the retry test takes seconds, not minutes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.utils import timezone

from tests.fixtures.waiting import wait_until
from tests.fixtures.webhook_receiver import receiver_fixture  # noqa: F401 (the webhook_receiver fixture)
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun
from webapp.webhooks import services
from webapp.webhooks.models import Event, WebhookDelivery
from webapp.webhooks.signing import signature_valid
from workers.webhooks import deliver_webhook_job

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKER_ENVIRONMENT = {"REFINERY_WEBHOOK_ALLOW_PRIVATE": "1", "REFINERY_WEBHOOK_RETRY_SECONDS": "1,1"}
# After the expected deliveries arrived, how long a test keeps listening for a duplicate.
QUIET_SECONDS = 3


@pytest.fixture
def webhook_worker(rq_worker, settings):
    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = True
    return rq_worker("default", extra_env=WORKER_ENVIRONMENT, with_scheduler=True).wait_ready()


def _running_run(owner: Any) -> PipelineRun:
    return PipelineRun.objects.create(
        kind="generate",
        name="hooked",
        created_by=owner,
        status=PipelineRun.Status.RUNNING,
        queue_name="default",
        started_at=timezone.now(),
    )


def _verified(request: Any, secret: str) -> dict[str, Any]:
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert signature_valid(
        secret=secret,
        timestamp=headers["x-refinery-timestamp"],
        body=request.body,
        header=headers["x-refinery-signature"],
        now=time.time(),
    ), f"signature does not verify: {headers}"
    payload = json.loads(request.body)
    assert headers["x-refinery-event"] == payload["event"]
    assert headers["x-refinery-delivery"] == str(payload["delivery"])
    return payload


def test_each_event_reaches_the_receiver_exactly_once_signed(researcher, webhook_receiver, webhook_worker):
    receiver = webhook_receiver()
    hook = services.webhook_create(owner=researcher, url=receiver.url, events=list(Event.values))
    succeeded, failed, queued = _running_run(researcher), _running_run(researcher), _running_run(researcher)
    PipelineRun.objects.filter(pk=queued.pk).update(status=PipelineRun.Status.QUEUED)
    queued.refresh_from_db()

    run_services.run_mark_succeeded(run_id=succeeded.pk)
    run_services.run_mark_failed(run_id=failed.pk, error="boom")
    run_services.run_request_cancel(run=queued)
    run_services.run_mark_succeeded(run_id=succeeded.pk)  # already over: no second event

    wait_until(lambda: len(receiver.received()) >= 3, 60, lambda: f"3 deliveries; got {receiver.received()}")
    time.sleep(QUIET_SECONDS)
    received = receiver.received()
    assert len(received) == 3, [request.body for request in received]
    payloads = {payload["run"]["id"]: payload for payload in (_verified(request, hook.secret) for request in received)}
    assert {run_id: payload["event"] for run_id, payload in payloads.items()} == {
        succeeded.pk: "run.succeeded",
        failed.pk: "run.failed",
        queued.pk: "run.cancelled",
    }
    assert payloads[failed.pk]["run"]["error"] == "boom"
    assert all(request.path == "/hook" for request in received)
    wait_until(
        lambda: set(hook.deliveries.values_list("status", flat=True)) == {WebhookDelivery.Status.DELIVERED},
        10,
        "the log to show every delivery as delivered",
    )
    assert all(delivery.attempts.count() == 1 for delivery in hook.deliveries.all())


def test_a_receiver_that_fails_twice_gets_the_delivery_on_the_third_try(researcher, webhook_receiver, webhook_worker):
    receiver = webhook_receiver(statuses=[500, 503])
    hook = services.webhook_create(owner=researcher, url=receiver.url, events=[Event.RUN_FAILED])
    run = _running_run(researcher)

    run_services.run_mark_failed(run_id=run.pk, error="out of memory")

    delivery = wait_until(
        lambda: hook.deliveries.filter(status=WebhookDelivery.Status.DELIVERED).first(),
        60,
        lambda: f"the third attempt to succeed; log: {list(WebhookDelivery.objects.values())}",
    )
    time.sleep(QUIET_SECONDS)
    received = receiver.received()
    assert len(received) == 3
    assert len({request.body for request in received}) == 1  # every attempt sends the same payload
    assert [_verified(request, hook.secret)["run"]["id"] for request in received] == [run.pk] * 3
    attempts = list(delivery.attempts.order_by("number").values_list("number", "response_code", "succeeded"))
    assert attempts == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert delivery.attempt_count == 3
    started = list(delivery.attempts.order_by("number").values_list("started_at", flat=True))
    assert all((later - earlier).total_seconds() >= 0.9 for earlier, later in zip(started, started[1:], strict=False))


def test_a_receiver_that_never_answers_2xx_is_given_up_after_the_last_delay(
    researcher, webhook_receiver, webhook_worker
):
    receiver = webhook_receiver(statuses=[500, 500, 500, 500])
    hook = services.webhook_create(owner=researcher, url=receiver.url, events=[Event.RUN_SUCCEEDED])
    run = _running_run(researcher)

    run_services.run_mark_succeeded(run_id=run.pk)

    delivery = wait_until(
        lambda: hook.deliveries.filter(status=WebhookDelivery.Status.FAILED).first(), 60, "the delivery to be given up"
    )
    time.sleep(QUIET_SECONDS)
    assert len(receiver.received()) == 3 and delivery.attempts.count() == 3
    assert delivery.response_code == 500 and "HTTP 500" in delivery.error
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.SUCCEEDED  # the run never waited on its hook


@pytest.fixture
def one_delivery(researcher, live_settings, settings):
    """`one_delivery(url)`: a hook to `url` and the delivery of one failed run, its job left unrun (the test runs it)."""
    import django_rq

    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = True
    settings.REFINERY_WEBHOOK_RETRY_SECONDS = [60]
    queue = django_rq.get_queue("default")

    def make(url: str) -> WebhookDelivery:
        hook = services.webhook_create(owner=researcher, url=url, events=[Event.RUN_FAILED])
        run_services.run_mark_failed(run_id=_running_run(researcher).pk, error="boom")
        queue.empty()
        return hook.deliveries.get()

    yield make
    queue.empty()


def test_a_redirect_is_not_followed(one_delivery, webhook_receiver):
    elsewhere = webhook_receiver()
    redirecting = webhook_receiver(redirect_to=elsewhere.url)
    delivery = one_delivery(redirecting.url)

    assert "retrying in 60 s" in deliver_webhook_job(delivery.pk)

    attempt = delivery.attempts.get()
    assert attempt.response_code == 302 and "redirects are not followed" in attempt.error
    assert len(redirecting.received()) == 1 and elsewhere.received() == []


def test_a_url_the_policy_no_longer_allows_is_refused_before_sending(one_delivery, webhook_receiver, settings):
    receiver = webhook_receiver()
    delivery = one_delivery(receiver.url)
    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = False  # the operator turned it off after the hook was registered

    deliver_webhook_job(delivery.pk)

    attempt = delivery.attempts.get()
    assert attempt.response_code is None and attempt.error.startswith("Refused before sending")
    assert receiver.received() == []


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(one_delivery, webhook_receiver, settings):
    settings.REFINERY_WEBHOOK_TIMEOUT_SECONDS = 1
    receiver = webhook_receiver(delay_seconds=3)
    delivery = one_delivery(receiver.url)

    started = time.monotonic()
    deliver_webhook_job(delivery.pk)

    assert time.monotonic() - started < 2.5
    attempt = delivery.attempts.get()
    assert attempt.response_code is None and "Timeout" in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.RETRYING

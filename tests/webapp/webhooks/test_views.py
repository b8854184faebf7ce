"""The webhook pages: register (the secret shown once), refuse a bad URL beside its field, the delivery log, delete."""

from __future__ import annotations

import pytest
from django.utils import timezone

from webapp.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery


@pytest.mark.django_db
def test_registering_shows_the_secret_once_and_never_again(researcher_client, allow_private):
    response = researcher_client.post(
        "/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["run.succeeded", "run.failed"], "scope": "mine"}
    )
    assert response.status_code == 200
    hook = Webhook.objects.get()
    assert hook.events == ["run.succeeded", "run.failed"]
    assert hook.secret in response.content.decode()
    for page in ("/webhooks/", f"/webhooks/{hook.pk}/"):
        later = researcher_client.get(page)
        assert later.status_code == 200 and hook.secret not in later.content.decode()


@pytest.mark.django_db
def test_a_url_on_this_machine_is_refused_beside_its_field_and_nothing_is_saved(researcher_client, settings):
    settings.REFINERY_WEBHOOK_ALLOW_PRIVATE = False
    response = researcher_client.post(
        "/webhooks/", {"url": "http://127.0.0.1:8000/", "events": ["run.failed"], "scope": "mine"}
    )
    assert response.status_code == 400
    field_errors = response.context["form"].errors["url"]
    assert "REFINERY_WEBHOOK_ALLOW_PRIVATE=1" in field_errors[0]
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_the_delivery_log_shows_each_attempt(researcher_client, researcher, make_webhook):
    hook = make_webhook(researcher)
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event="run.failed", subject="run:5:1", payload={}, status="delivered", attempt_count=2
    )
    for number, code in ((1, 503), (2, 200)):
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=timezone.now(),
            response_code=code,
            succeeded=code == 200,
            error="HTTP 503: receiver is down" if code == 503 else "",
        )
    page = researcher_client.get(f"/webhooks/{hook.pk}/").content.decode()
    assert page.count('class="attempt"') == 2
    assert "HTTP 503: receiver is down" in page and "Delivered" in page


@pytest.mark.django_db
def test_another_researchers_hook_is_not_found_and_cannot_be_deleted(client, researcher, make_user, make_webhook):
    hook = make_webhook(make_user("researcher"))
    client.force_login(researcher)
    assert client.get(f"/webhooks/{hook.pk}/").status_code == 404
    assert client.post(f"/webhooks/{hook.pk}/delete/").status_code == 404
    assert f"webhook-{hook.pk}" not in client.get("/webhooks/").content.decode()
    assert Webhook.objects.filter(pk=hook.pk).exists()


@pytest.mark.django_db
def test_the_owner_deletes_a_hook(researcher_client, researcher, make_webhook):
    hook = make_webhook(researcher)
    response = researcher_client.post(f"/webhooks/{hook.pk}/delete/")
    assert response.status_code == 302 and not Webhook.objects.exists()


@pytest.mark.django_db
def test_annotators_are_refused(client, annotator):
    client.force_login(annotator)
    assert client.get("/webhooks/").status_code == 403

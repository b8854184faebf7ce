"""CSRF stays on everywhere, htmx requests included."""
from __future__ import annotations

import pytest
from django.test import Client

from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.services import model_ensure_embedded


@pytest.fixture
def csrf_client(researcher) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}])
def test_post_without_csrf_token_is_refused_and_creates_nothing(csrf_client: Client, headers):
    prompt_set = SeedPromptSet.objects.create(name="s", prompt_count=1)
    SeedPrompt.objects.create(prompt_set=prompt_set, position=0, text="hi")
    model = model_ensure_embedded()
    data = {"model": model.pk, "prompt_set": prompt_set.pk, "n": 1, "max_tokens": 8, "temperature": 0.7, "top_p": 0.95, "batch_size": 8}
    response = csrf_client.post("/generate/new/", data, headers=headers)
    assert response.status_code == 403
    from webapp.runs.models import PipelineRun

    assert PipelineRun.objects.count() == 0


@pytest.mark.django_db
def test_pages_carry_the_csrf_token_for_htmx(csrf_client: Client):
    page = csrf_client.get("/runs/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in page


@pytest.mark.django_db
def test_htmx_post_with_the_header_token_is_accepted(csrf_client: Client):
    csrf_client.get("/runs/")
    token = csrf_client.cookies["csrftoken"].value
    response = csrf_client.post("/runs/999/cancel/", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 404  # past CSRF; the run does not exist

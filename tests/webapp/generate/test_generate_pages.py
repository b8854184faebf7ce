"""The generate app's pages: the form queues a run, the estimate says what it asks of the model."""
from __future__ import annotations

import pytest

from tests.fixtures.generate_runs import prompt_set_of
from webapp.library.models import SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def prompt_set():
    return prompt_set_of(3, "three")


def test_new_generate_form_creates_a_run_and_redirects(researcher_client, prompt_set):
    model = model_ensure_embedded()
    data = {"name": "mine", "model": model.pk, "prompt_set": prompt_set.pk, "n": 1, "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "seed": 3, "batch_size": 4}
    response = researcher_client.post("/generate/new/", data)
    run = PipelineRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.config["generate"]["sampling"]["seed"] == 3 and run.name == "mine"


def test_new_generate_form_reports_problems_and_queues_nothing(researcher_client):
    empty = SeedPromptSet.objects.create(name="empty")
    data = {"model": model_ensure_embedded().pk, "prompt_set": empty.pk, "n": 0, "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "batch_size": 4}
    response = researcher_client.post("/generate/new/", data)
    assert response.status_code == 400
    assert "greater than or equal to 1" in response.content.decode()
    assert PipelineRun.objects.count() == 0


def test_the_estimate_counts_prompts_samples_and_tokens(researcher_client, prompt_set):
    data = {"model": model_ensure_embedded().pk, "prompt_set": prompt_set.pk, "n": 4, "max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "batch_size": 4}
    page = researcher_client.post("/generate/new/estimate/", data).content.decode()
    assert 'data-key="model-calls"' in page and ">3<" in page and ">12<" in page and ">120<" in page
    assert PipelineRun.objects.count() == 0  # an estimate queues nothing


def test_the_estimate_of_a_form_with_problems_shows_them_instead(researcher_client, prompt_set):
    data = {"model": model_ensure_embedded().pk, "prompt_set": prompt_set.pk, "n": 0, "max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "batch_size": 4}
    page = researcher_client.post("/generate/new/estimate/", data).content.decode()
    assert "greater than or equal to 1" in page and 'data-key="samples"' not in page


def test_the_estimate_warns_that_greedy_decoding_makes_the_n_answers_identical(researcher_client, prompt_set):
    data = {"model": model_ensure_embedded().pk, "prompt_set": prompt_set.pk, "n": 4, "max_tokens": 10, "temperature": 0, "top_p": 0.9, "batch_size": 4}
    page = researcher_client.post("/generate/new/estimate/", data).content.decode()
    assert "the 4 answers of each prompt will be identical" in page and "Ready to queue, but read the warning" in page
    one = researcher_client.post("/generate/new/estimate/", {**data, "n": 1}).content.decode()
    sampled = researcher_client.post("/generate/new/estimate/", {**data, "temperature": 0.7}).content.decode()
    assert "identical" not in one and "identical" not in sampled and "Ready to queue." in sampled


def test_the_generate_page_shows_the_prompt_counts_and_folds_the_sampling_details(researcher_client, prompt_set):
    page = researcher_client.get("/generate/new/").content.decode()
    assert ">three — 3 prompts</option>" in page
    advanced = page[page.index('<details class="advanced"') :]
    assert 'name="temperature"' in advanced and 'name="max_tokens"' not in advanced

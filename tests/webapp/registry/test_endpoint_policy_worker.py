"""The worker enforces the endpoint policy itself: an entry changed after registration (bypassing the form and
the admin) makes the run fail with the policy's reason, and nothing is sent to the address."""

from __future__ import annotations

import pytest

from tests.fixtures.runs import wait_for_run
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_register_endpoint
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_endpoint_changed_to_a_metadata_address_after_registration_fails_in_the_worker(
    live_settings, rq_worker, researcher
):
    entry = model_register_endpoint(name="remote", base_url="http://127.0.0.1:9/v1", served_model_name="m")
    prompt_set = SeedPromptSet.objects.create(name="one prompt", prompt_count=1)
    SeedPrompt.objects.create(prompt_set=prompt_set, position=0, text="Say hello.")
    config = generate_services.generate_config_build(
        model=entry, prompt_set=prompt_set, n=1, max_tokens=8, temperature=0.7, top_p=0.95, seed=1, batch_size=1
    )
    # As a direct database write or a script would: no form, no admin, no clean().
    ModelEntry.objects.filter(pk=entry.pk).update(base_url="http://169.254.169.254/v1", api_key_env="SECRET_KEY")
    run = services.run_create(user=researcher, kind="generate", config=config, name="policy")
    worker = rq_worker()

    run = wait_for_run(run, timeout=120, what="the run to fail")

    assert run.status == PipelineRun.Status.FAILED, run.error + worker.log_text()
    assert "SECRET_KEY" in run.error and "REFINERY_ENDPOINT_KEY_" in run.error, run.error
    ModelEntry.objects.filter(pk=entry.pk).update(api_key_env="")
    again = services.run_create(user=researcher, kind="generate", config=config, name="policy again")
    again = wait_for_run(again, timeout=120, what="the second run to fail")
    assert (
        again.status == PipelineRun.Status.FAILED
        and "169.254.169.254" in again.error
        and "never allowed" in again.error
    ), again.error

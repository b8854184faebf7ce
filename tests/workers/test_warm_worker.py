"""A worker keeps its model between jobs: the second job on the same model reuses it and says so on its run page.

A real `rqworker` process and the real 135M model; committed rows, hence `transactional_db`.
"""
from __future__ import annotations

import pytest

from tests.fixtures.runs import wait_for_run
from webapp.generate import services as generate_services
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _generate_run(user, prompt_set: SeedPromptSet, name: str) -> PipelineRun:
    config = generate_services.generate_config_build(
        model=model_ensure_embedded(), prompt_set=prompt_set, n=1, max_tokens=4,
        temperature=0.7, top_p=0.95, seed=1, batch_size=2,
    )
    return services.run_create(user=user, kind="generate", config=config, name=name)


def test_a_second_job_on_the_same_model_reuses_it_and_starts_generating_within_two_seconds(
    live_settings, rq_worker, researcher, client, embedded_model_dir
):
    prompt_set = SeedPromptSet.objects.create(name="two", prompt_count=2)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=i, text=text) for i, text in enumerate(["Hi.", "Name a color."])
    )
    first = _generate_run(researcher, prompt_set, "cold")
    second = _generate_run(researcher, prompt_set, "warm")
    worker = rq_worker()

    first, second = wait_for_run(first, timeout=300), wait_for_run(second, timeout=120)

    assert first.status == second.status == PipelineRun.Status.SUCCEEDED, worker.log_text()[-3000:]
    assert first.summary["model_cache_hit"] is False
    assert second.summary["model_cache_hit"] is True
    assert second.summary["model_load_seconds"] < 2
    assert "reused from memory" in second.log_tail
    client.force_login(researcher)
    page = client.get(f"/runs/{second.pk}/").content.decode()
    assert "Model cache hit" in page and "Model load seconds" in page

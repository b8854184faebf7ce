"""AFT jobs end to end: the site's config -> Redis -> a real rqworker -> the AFT pipeline -> artifacts.

A tiny random model keeps this to seconds; the mechanics (prompt snapshot, layers, artifacts,
summary, aggregation data from the inference artifact) are those of a real model.
"""
from __future__ import annotations

import pytest

from pipelines.aft import AftConfig
from pipelines.training.examples import load_sft_examples
from tests.fixtures.runs import wait_for_run
from webapp.aft import services
from webapp.library.models import Artifact, SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_inference_then_aggregation_data_through_a_worker(live_settings, rq_worker, researcher, tiny_model_dir, client):
    tiny = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    prompt_set = SeedPromptSet.objects.create(name="three", prompt_count=3)
    SeedPrompt.objects.bulk_create(SeedPrompt(prompt_set=prompt_set, position=i, text=f"Question {i}?") for i in range(3))
    worker = rq_worker()

    aft = AftConfig.from_dict(
        {"proposal_params": {"n": 3, "max_tokens": 4}, "aggregation_params": {"n": 3, "max_tokens": 4}, "hidden_layer": 1, "batch_size": 2}
    )
    run = run_services.run_create(kind="aft_inference", user=researcher, config=services.inference_config_build(model=tiny, prompt_set=prompt_set, aft=aft))
    run = wait_for_run(run, timeout=240)
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()
    artifact = run.artifacts.get()
    assert artifact.kind == Artifact.Kind.AGGREGATIONS and artifact.row_count == 3
    row = artifact.preview[0]
    assert [len(layer) for layer in (row["proposals"], *row["hidden_layers"], row["responses"])] == [3, 3, 1]
    assert run.summary["generations"] == 3 * 7 and run.summary["prompts"] == 3
    assert {"completion tokens · proposals", "completion tokens · aggregation 1", "completion tokens · final aggregation"} <= set(run.summary)
    assert (run_services.run_directory(run) / "prompts.jsonl").is_file()

    data_config = services.data_config_build(
        source=artifact, model=tiny, options={"target_rule": "aggregator", "aggregator": {"max_tokens": 5, "temperature": 0.7}, "plain_rows": True}
    )
    data_run = wait_for_run(run_services.run_create(kind="aft_data", user=researcher, config=data_config), timeout=240)
    assert data_run.status == PipelineRun.Status.SUCCEEDED, data_run.error + data_run.traceback + worker.log_text()
    sft = data_run.artifacts.get()
    assert sft.kind == Artifact.Kind.SFT and sft.row_count == data_run.summary["rows"] == 2 * data_run.summary["aggregation_rows"]
    examples = load_sft_examples(sft.jsonl_path)
    assert examples[0].prompt[0]["content"].startswith("You are a helpful aggregator.")
    assert examples[0].prompt[1] == {"role": "user", "content": "Question 0?"}

    client.force_login(researcher)
    page = client.get(data_run.get_absolute_url()).content.decode()
    assert f"/training/new/?dataset={sft.pk}&amp;trainer=sft" in page

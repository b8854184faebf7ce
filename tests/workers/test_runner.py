"""The generic worker's registration: outputs published early and listed again at the end are registered once."""
from __future__ import annotations

import json

import pytest

from pipelines.common.result import ArtifactOutput, ModelOutput, PipelineResult
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from workers.runner import OutputRegistrar, PreparedJob, Registered

pytestmark = pytest.mark.django_db


def test_an_output_published_early_and_listed_again_in_the_final_result_is_registered_once(
    researcher, settings, tmp_path, monkeypatch
):
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    base = model_ensure_embedded()
    run = services.run_create(user=researcher, kind="train_sft", config={"model_id": base.pk})
    rows = tmp_path / "pairs.jsonl"
    rows.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n")
    published = PipelineResult(
        artifacts=[ArtifactOutput(name="pairs", kind="preferences", jsonl_path=rows)],
        models=[ModelOutput(key="iter0", output_dir=tmp_path / "iter0", dataset="pairs", label="iter0")],
    )
    job = PreparedJob(pipeline=lambda *args: published, config=None, inputs=None, models={"model": base})
    registrar = OutputRegistrar(run, job, Registered(models=dict(job.models)))
    calls: list[str] = []
    register_artifact = services.artifact_register
    monkeypatch.setattr(services, "artifact_register", lambda **kw: calls.append(kw["name"]) or register_artifact(**kw))

    registrar.register(published)  # progress.publish(...) during the run
    registrar.register(published)  # the final result lists it again
    registrar.register(PipelineResult(summary={"steps": 3}))

    assert calls == ["pairs"]
    run.refresh_from_db()
    assert run.artifacts.count() == 1 and run.produced_models.count() == 1
    entry = run.produced_models.get()
    assert entry.parent == base and entry.trained_on.name == "pairs"
    assert run.summary["iter0"] == entry.name and run.summary["iter0_id"] == entry.pk and run.summary["steps"] == 3

"""AugCon through the queue: the site's config -> Redis -> a real rqworker -> the pipeline -> artifacts.

The tiny random model's output is noise, so nearly every split fails to parse: the test checks that the
failures are counted and retried, the run still finishes, and its artifacts and pages are there.
"""
from __future__ import annotations

import pytest

from tests.fixtures.runs import wait_for_run
from tests.webapp.augcon.conftest import corpus, qa_set  # noqa: F401 - fixtures
from webapp.augcon import services
from webapp.library.models import Artifact
from webapp.registry.models import ModelEntry
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_augcon_run_on_two_documents_finishes_through_a_worker_with_its_failures_counted(
    live_settings, rq_worker, researcher, client, tiny_model_dir, corpus, qa_set  # noqa: F811
):
    model = ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))
    config = services.augcon_config_build(
        model=model, corpus=corpus, few_shot_set=qa_set, documents="0-1", preset="tiny-cpu-demo",
        overrides={"max_attempts": 2, "max_rounds_per_chunk": 1, "max_chunks_per_document": 1, "question_max_tokens": 8,
                   "answer_max_tokens": 8, "judge_max_tokens": 2, "cst_demonstrations": 1, "min_paragraph_length": 0,
                   "scorer": {"torch_threads": 1}},
    )
    assert config["document_positions"] == [0, 1]
    worker = rq_worker()
    run = run_services.run_create(kind="augcon", user=researcher, config=config, name="augcon test")
    run = wait_for_run(run, timeout=300)
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error + run.traceback + worker.log_text()

    summary = run.summary
    assert summary["documents"] == 2 and summary["chunks"] == 2
    assert summary["cst_calls"] == 2 * 2 and summary["parse_failures"] == summary["cst_calls"]
    assert summary["retries"] == 2 and summary["sft_rows"] == 0
    assert "scorer pairs" in summary["scorer_skipped"]
    artifacts = {artifact.name: artifact for artifact in run.artifacts.all()}
    assert set(artifacts) == {"queries", "scorer_pairs", "sft"}
    assert artifacts["sft"].kind == Artifact.Kind.SFT and artifacts["queries"].kind == Artifact.Kind.QUERIES
    assert artifacts["sft"].parquet_path.endswith("sft.parquet")

    client.force_login(researcher)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="augcon-section"' in page and 'id="augcon-parse-failures">4<' in page
    assert f"/training/new/?dataset={artifacts['sft'].pk}&amp;trainer=sft" in page
    tree = client.get(f"/augcon/runs/{run.pk}/trees/doc00000/")
    assert tree.status_code == 200
    assert "parse_failed" in tree.content.decode() and "last unparsable output" in tree.content.decode()

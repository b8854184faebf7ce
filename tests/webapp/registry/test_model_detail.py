"""A model's own page: its config, metrics, lineage up and down, the runs that used or produced it, its files."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.registry.models import ModelEntry
from webapp.registry.selectors import model_ids_in_config
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _page(client: Client, entry: ModelEntry) -> str:
    response = client.get(entry.get_absolute_url())
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def lineage(researcher, tmp_path: Path) -> dict[str, object]:
    """base -> checkpoint (produced by a training run, with files) -> grandchild; a generate run used the base."""
    base = model_ensure_embedded()
    used_run = run_services.run_create(
        user=researcher, kind="generate", config=small_generate_config(prompt_set_of(2, "two"))
    )
    training_run = PipelineRun.objects.create(kind="train_sft", name="sft on notes", config={"model_id": base.pk})
    directory = tmp_path / "checkpoint"
    (directory / "tokenizer").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (directory / "model.safetensors").write_bytes(b"w" * 3000)
    (directory / "tokenizer" / "vocab.json").write_text("{}")
    checkpoint = ModelEntry.objects.create(
        name="base → SFT #1",
        parent=base,
        path=str(directory),
        produced_by_run=training_run,
        metrics={"train_loss": 1.25},
        training_config={"learning_rate": 2e-5, "epochs": 1},
    )
    grandchild = ModelEntry.objects.create(
        name="base → SFT #1 → DPO #2", parent=checkpoint, path=str(tmp_path / "gone")
    )
    return {"base": base, "checkpoint": checkpoint, "grandchild": grandchild, "used": used_run, "trained": training_run}


def test_a_checkpoint_page_shows_its_lineage_both_ways_its_metrics_config_and_files(researcher_client: Client, lineage):
    page = _page(researcher_client, lineage["checkpoint"])
    lineage_part = page.split('id="model-lineage"')[1].split("</section>")[0]
    assert f'<a href="{lineage["base"].get_absolute_url()}">{lineage["base"].name}</a>' in lineage_part
    assert f'produced by <a href="{lineage["trained"].get_absolute_url()}">' in lineage_part
    assert f'<a href="{lineage["grandchild"].get_absolute_url()}">{lineage["grandchild"].name}</a>' in lineage_part
    assert "<th>Train loss</th>" in page and "1.25" in page
    assert '"learning_rate": 2e-05' in page
    files_part = page.split('id="model-files"')[1]
    assert "in 3 files" in files_part
    for relative_path in ("config.json", "model.safetensors", "tokenizer/vocab.json"):
        assert f"<code>{relative_path}</code>" in files_part
    assert "No run has used it yet." in page


def test_the_base_model_page_lists_the_runs_that_used_it_and_every_descendant(researcher_client: Client, lineage):
    page = _page(researcher_client, lineage["base"])
    runs_part = page.split('id="model-runs"')[1].split("</section>")[0]
    assert lineage["used"].get_absolute_url() in runs_part
    assert lineage["trained"].get_absolute_url() in runs_part
    descendants = page.split('id="model-descendants"')[1].split("</ul>")[0]
    assert lineage["checkpoint"].name in descendants and lineage["grandchild"].name in descendants
    assert "workers convert its weights once" in page


def test_a_model_whose_directory_is_gone_says_so(researcher_client: Client, lineage):
    page = _page(researcher_client, lineage["grandchild"])
    assert "no such directory on this host" in page


def test_the_model_list_links_each_model_to_its_page(researcher_client: Client, lineage):
    page = html.unescape(researcher_client.get(reverse("registry:list")).content.decode())
    for entry in (lineage["base"], lineage["checkpoint"], lineage["grandchild"]):
        assert f'<a href="{entry.get_absolute_url()}">{entry.name}</a>' in page


def test_an_unknown_model_is_a_404_and_annotators_are_refused(client: Client, annotator, researcher_client: Client):
    assert researcher_client.get(reverse("registry:detail", args=[999_999])).status_code == 404
    client.force_login(annotator)
    assert client.get(reverse("registry:detail", args=[model_ensure_embedded().pk])).status_code == 403


def test_model_ids_are_found_wherever_a_config_names_them():
    config = {
        "model_id": 1,
        "scorer_model_id": 2,
        "model_ids": {"large": 3, "small": 4},
        "contestants": [{"kind": "model", "model_id": 5}, {"kind": "artifact", "artifact_id": 6}],
        "reference_model_id": None,
    }
    assert model_ids_in_config(config) == {1, 2, 3, 4, 5}

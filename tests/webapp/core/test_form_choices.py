"""Dropdowns that fit: each run form offers only the datasets it can use, labelled with origin and size,
and an empty dropdown says why and where to make one (webapp/core/choices.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from webapp.core.choices import DATASET_SHAPES, artifact_label, dataset_fits, datasets_of_shape
from webapp.library.models import Artifact
from webapp.runs.models import PipelineRun
from webapp.runs.services import artifact_register

pytestmark = pytest.mark.django_db

ROWS = {
    "sft-rows": [{"prompt": "p", "response": "r"}] * 3,
    "chat-rows": [{"messages": [{"role": "user", "content": "hi"}]}] * 2,
    "pairs-rows": [{"prompt": "p", "chosen": "c", "rejected": "r"}] * 4,
    "spin-rows": [{"real": "a", "generated": "b"}],
    "side-by-side": [{"prompt": "p", "response_a": "a", "response_b": "b"}] * 5,
    "generations": [{"prompt": "p", "responses": ["a", "b"]}] * 6,
    "queries": [{"document_id": "d", "query": "q"}] * 7,
}
FITS = {
    "sft": {"sft-rows", "chat-rows"},
    "preference": {"pairs-rows", "spin-rows"},
    "reward": {"pairs-rows", "spin-rows"},
    "training": {"sft-rows", "chat-rows", "pairs-rows", "spin-rows"},
    "pairs": {"pairs-rows", "side-by-side"},
    "answers": {"sft-rows", "generations"},
    "response_groups": {"pairs-rows", "spin-rows", "generations"},
}


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, Artifact]:
    registered = {}
    for name, rows in ROWS.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        registered[name] = artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)
    return registered


def _offered(page: str, field: str) -> set[str]:
    """The option labels of the select named `field` on a rendered page."""
    start = page.index(f'name="{field}"')
    select = page[start : page.index("</select>", start)]
    return {label.split(" (")[0] for label in re.findall(r'<option value="\d+"[^>]*>([^<]*)</option>', select)}


@pytest.mark.parametrize("shape", sorted(FITS))
def test_each_use_offers_exactly_the_datasets_of_its_shape(artifacts, shape):
    offered = {artifact.name for artifact in datasets_of_shape(shape)}
    assert offered == FITS[shape]
    for name, artifact in artifacts.items():
        assert dataset_fits(shape, artifact.columns) == (name in FITS[shape])


def test_a_label_gives_the_origin_and_the_row_count(artifacts, researcher):
    assert artifact_label(artifacts["pairs-rows"]) == "pairs-rows (imported) — 4 rows"
    assert artifact_label(artifacts["spin-rows"]) == "spin-rows (imported) — 1 row"
    run = PipelineRun.objects.create(kind="generate", created_by=researcher, config={})
    Artifact.objects.filter(pk=artifacts["generations"].pk).update(run=run)
    artifacts["generations"].refresh_from_db()
    assert artifact_label(artifacts["generations"]) == f"generations (run {run.pk}) — 6 rows"


@pytest.mark.parametrize(
    ("url", "field", "shape"),
    [
        ("/spin/new/", "dataset", "sft"),
        ("/training/new/", "dataset", "training"),
        ("/annotation/new/", "artifact", "pairs"),
        ("/evaluations/new/", "candidate_artifacts", "answers"),
        ("/evaluations/new/", "baseline_artifact", "answers"),
        ("/aft/data/new/", "source", "response_groups"),
    ],
)
def test_each_form_offers_only_the_datasets_it_can_use_with_their_sizes(
    researcher_client, artifacts, url, field, shape
):
    page = researcher_client.get(url).content.decode()
    assert _offered(page, field) == FITS[shape]
    for name in FITS[shape]:
        assert f">{artifact_label(artifacts[name])}</option>" in page
    assert f'data-empty-choice="{field}"' not in page


def test_an_empty_dropdown_says_why_and_links_to_where_to_make_one(researcher_client, artifacts):
    Artifact.objects.exclude(name="queries").delete()  # nothing left that SPIN or a campaign can use
    spin = researcher_client.get("/spin/new/").content.decode()
    assert f'data-empty-choice="dataset">No {DATASET_SHAPES["sft"].description} dataset yet' in spin
    assert 'href="/library/datasets/upload/">Make one</a>' in spin and "queries" not in spin
    campaign = researcher_client.get("/annotation/new/").content.decode()
    assert 'data-empty-choice="artifact">No pairwise' in campaign


def test_a_dataset_of_the_wrong_shape_posted_anyway_is_refused(researcher_client, artifacts):
    response = researcher_client.post("/spin/new/", {"dataset": artifacts["pairs-rows"].pk, "preset": "tiny-cpu-demo"})
    assert response.status_code == 400
    assert "Select a valid choice" in " ".join(response.context["form"].errors["dataset"])
    assert not PipelineRun.objects.exists()


def test_model_dropdowns_offer_the_models_of_the_right_kind_and_an_empty_one_links_to_the_registry(
    researcher_client,
):
    from webapp.registry.models import ModelEntry

    ModelEntry.objects.create(name="local-lm", source=ModelEntry.Source.LOCAL, path="/m/lm")
    ModelEntry.objects.create(name="scores", task=ModelEntry.Task.REWARD, source=ModelEntry.Source.LOCAL, path="/m/r")
    ModelEntry.objects.create(
        name="remote-lm",
        backend=ModelEntry.Backend.OPENAI,
        source=ModelEntry.Source.ENDPOINT,
        base_url="http://127.0.0.1:9/v1",
        served_model_name="m",
    )
    training = researcher_client.get("/training/new/").content.decode()
    assert _offered(training, "model") == {"local-lm"}  # trainers load local weights of a text model
    generate = researcher_client.get("/generate/new/").content.decode()
    assert _offered(generate, "model") == {"local-lm", "remote-lm"}  # any backend answers prompts
    augcon = researcher_client.get("/augcon/new/").content.decode()
    assert _offered(augcon, "scorer_model") == {"local-lm"}  # the scorer trains on local weights
    ModelEntry.objects.exclude(name="remote-lm").delete()
    empty = researcher_client.get("/training/new/").content.decode()
    assert 'data-empty-choice="model">No registered model fits here yet' in empty
    assert 'href="/models/">Make one</a>' in empty

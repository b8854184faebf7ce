"""Clone and edit: each kind's finished run opens its form with the same settings, which queue the same config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from tests.fixtures.generate_runs import prompt_set_of
from webapp.library.models import Artifact, Corpus, Document, FewShotExample, FewShotSet, SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services as run_services
from webapp.runs.clone import clone_link
from webapp.runs.models import PipelineRun
from webapp.runs.registry import all_run_kinds

pytestmark = pytest.mark.django_db


def _artifact(tmp_path: Path, name: str, kind: str, rows: list[dict]) -> Artifact:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run_services.artifact_register(run=None, name=name, kind=kind, jsonl_path=path)


def _generate(tmp_path: Path) -> tuple[str, dict]:
    return "/generate/new/", {
        "model": model_ensure_embedded().pk,
        "prompt_set": prompt_set_of(2, "two").pk,
        "n": 2,
        "max_tokens": 12,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 7,
        "batch_size": 2,
        "system_prompt": "Be brief.",
    }


def _aft_inference(tmp_path: Path) -> tuple[str, dict]:
    return "/aft/new/", {
        "model": model_ensure_embedded().pk,
        "prompt_set": prompt_set_of(2, "two").pk,
        "mode": "aggregate",
        "n": 3,
        "hidden_layer": 1,
        "final_aggregation": "on",
        "proposal_temperature": 0.6,
        "proposal_top_p": 0.9,
        "aggregation_temperature": 0.5,
        "aggregation_top_p": 0.8,
        "final_temperature": 0.0,
        "max_tokens": 16,
        "seed": 2024,
        "batch_size": 4,
    }


def _aft_data(tmp_path: Path) -> tuple[str, dict]:
    generations = _artifact(
        tmp_path, "gen", Artifact.Kind.GENERATIONS, [{"prompt": "2+2?", "responses": ["4.", "5.", "four"]}]
    )
    return "/aft/data/new/", {
        "source": generations.pk,
        "target_rule": "aggregator",
        "model": model_ensure_embedded().pk,
        "max_proposals": 4,
        "min_proposals": 2,
        "seed": 11,
        "max_examples": 3,
        "max_tokens": 32,
        "aggregator_temperature": 0.2,
    }


def _spin(tmp_path: Path) -> tuple[str, dict]:
    sft = _artifact(tmp_path, "qa", Artifact.Kind.SFT, [{"question": f"q{i}?", "answer": f"a{i}."} for i in range(10)])
    return "/spin/new/", {
        "model": model_ensure_embedded().pk,
        "dataset": sft.pk,
        "preset": "tiny-cpu-demo",
        "iterations": "3",
        "max_prompts": "6",
        "max_new_tokens": "20",
        "learning_rate": "0.0001",
        "beta": "0.3",
        "max_steps": "4",
        "conversation_turn": "last",
        "devices": "1",
    }


def _training(trainer: str, **fields: str):  # type: ignore[no-untyped-def]
    def form(tmp_path: Path) -> tuple[str, dict]:
        rows = (
            [{"prompt": "2+2?", "response": "4."}] * 3
            if trainer == "sft"
            else [{"prompt": "2+2?", "chosen": "4.", "rejected": "7."}] * 3
        )
        dataset = _artifact(tmp_path, "data", Artifact.Kind.SFT, rows)
        return "/training/new/", {
            "trainer": trainer,
            "model": model_ensure_embedded().pk,
            "dataset": dataset.pk,
            "preset": "tiny-cpu-demo",
            "devices": "1",
            **fields,
        }

    return form


def _augcon(tmp_path: Path) -> tuple[str, dict]:
    corpus = Corpus.objects.create(name="reference", document_count=2)
    for position, text in enumerate(["The pass statement does nothing. " * 5, "The del statement deletes. " * 5]):
        Document.objects.create(corpus=corpus, position=position, title=f"doc {position}", text=text)
    qa_set = FewShotSet.objects.create(name="qa", kind=FewShotSet.Kind.QA, example_count=2)
    for position in range(2):
        FewShotExample.objects.create(
            few_shot_set=qa_set,
            position=position,
            context=f"First sentence {position}. Second sentence {position}.",
            question="q?",
            answer="a.",
        )
    return "/augcon/new/", {
        "corpus": corpus.pk,
        "few_shot_set": qa_set.pk,
        "model": model_ensure_embedded().pk,
        "preset": "",
        "max_documents": 2,
    }


def _almost(tmp_path: Path) -> tuple[str, dict]:
    seeds = SeedPromptSet.objects.create(name="seeds", instruction="Ask something.", prompt_count=2)
    for position, text in enumerate(["How do I boil an egg?", "What is a tuple?"]):
        SeedPrompt.objects.create(prompt_set=seeds, position=position, text=text)
    demonstrations = FewShotSet.objects.create(
        name="HHH", kind=FewShotSet.Kind.DEMONSTRATION, preamble="Dialogues.", example_count=4
    )
    for position in range(4):
        FewShotExample.objects.create(
            few_shot_set=demonstrations, position=position, context=f"Human: q{position}?\n\nAssistant: a{position}."
        )
    small = ModelEntry.objects.create(
        name="Small-135M", source=ModelEntry.Source.LOCAL, path="/m/s", parameter_count=135_000_000
    )
    rows = [
        {"model": small.pk, "shots": "3", "demonstration_set": demonstrations.pk},
        {"model": small.pk, "shots": "1", "demonstration_set": demonstrations.pk},
    ]
    data = {
        "seed_prompt_set": seeds.pk,
        "num_generation": "5",
        "in_context": "2",
        "reward_model": small.pk,
        "preset": "tiny-cpu-demo",
        "rmsp_enabled": "on",
        "rmsp_n": "2",
        "rubric-TOTAL_FORMS": str(len(rows)),
        "rubric-INITIAL_FORMS": "0",
        "rubric-MIN_NUM_FORMS": "0",
        "rubric-MAX_NUM_FORMS": "32",
        "filter_empty": "on",
        "filter_identical": "on",
        "action": "start",
    }
    for index, row in enumerate(rows):
        for field, value in row.items():
            data[f"rubric-{index}-{field}"] = value
    return "/almost/new/", data


def _evaluation(tmp_path: Path) -> tuple[str, dict]:
    model = model_ensure_embedded()
    return "/evaluations/new/", {
        "candidate_models": [model.pk],
        "baseline_model": model.pk,
        "prompt_set": prompt_set_of(2, "two").pk,
        "judge": model.pk,
        "max_tokens": 24,
        "candidate_temperature": 0.9,
        "baseline_temperature": 0.2,
        "seed": 4,
        "judge_method": "text",
        "judge_max_tokens": 8,
        "judge_retries": 1,
        "bootstrap_rounds": 300,
    }


FORMS = {
    "generate": _generate,
    "aft_inference": _aft_inference,
    "aft_data": _aft_data,
    "spin": _spin,
    "train_sft": _training("sft", loss_on="all", lora_r="4", learning_rate="0.001"),
    "train_preference": _training("preference", beta="0.2", loss="ipo"),
    "train_reward": _training("reward", eval_fraction="0.2"),
    "augcon": _augcon,
    "almost": _almost,
    "evaluation": _evaluation,
}
SAME_EXCEPT = {"evaluation": "evaluation_id"}
"""Config keys a clone has of its own: an evaluation's new Evaluation row."""


def _settings(run: PipelineRun) -> dict:
    return {key: value for key, value in run.config.items() if key != SAME_EXCEPT.get(run.kind)}


def _posted(form) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """The bound form's data as the browser posts it again (lists of strings per field)."""
    return {key: [str(value) for value in form.data.getlist(key)] for key in form.data}


def _finish(run: PipelineRun, status: str = PipelineRun.Status.SUCCEEDED) -> PipelineRun:
    PipelineRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


def test_every_kind_can_be_cloned():
    assert [declared.kind for declared in all_run_kinds() if declared.clone is None] == []


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_a_cloned_run_queues_the_same_config_and_records_where_it_came_from(researcher_client, tmp_path, kind):
    url, fields = FORMS[kind](tmp_path)
    response = researcher_client.post(url, fields)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    source = _finish(PipelineRun.objects.get())
    assert source.kind == kind
    assert clone_link(source) == f"{url}?from_run={source.pk}"

    page = researcher_client.get(clone_link(source))
    assert page.status_code == 200
    form = page.context["form"]
    assert form.is_bound and not form.errors, form.errors
    assert f"settings of run #{source.pk}" in page.content.decode()

    again = researcher_client.post(clone_link(source), _posted(form))
    assert again.status_code == 302, again.context["form"].errors if again.context else again
    clone = PipelineRun.objects.exclude(pk=source.pk).get()
    assert (clone.kind, _settings(clone)) == (source.kind, _settings(source))
    assert clone.parent == source and clone.summary == {"cloned_from": source.pk}


def test_a_cloned_evaluation_asks_the_prompts_its_source_imported(researcher_client, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url, fields = _evaluation(tmp_path)
    upload = SimpleUploadedFile("asked.jsonl", b'{"prompt": "Say hi."}\n{"prompt": "Say bye."}\n')
    researcher_client.post(url, {**fields, "prompt_set": "", "prompts_file": upload})
    source = _finish(PipelineRun.objects.get())
    page = researcher_client.get(clone_link(source))
    assert "Its 2 prompts imported from asked.jsonl are asked again" in page.content.decode()
    researcher_client.post(clone_link(source), _posted(page.context["form"]))
    clone = PipelineRun.objects.exclude(pk=source.pk).get()
    assert clone.evaluation.imported_prompts == ["Say hi.", "Say bye."]
    assert clone.evaluation.prompt_source == "asked.jsonl" and clone.parent == source


def test_a_cloned_almost_form_shows_the_rubric_in_its_order(researcher_client, tmp_path):
    url, fields = _almost(tmp_path)
    researcher_client.post(url, fields)
    source = _finish(PipelineRun.objects.get())
    page = researcher_client.get(clone_link(source)).content.decode()
    assert 'name="rubric-TOTAL_FORMS" value="2"' in page
    assert 'name="rubric-0-shots" value="3"' in page and 'name="rubric-1-shots" value="1"' in page


def test_an_edited_clone_changes_only_what_was_edited(researcher_client, tmp_path):
    url, fields = _generate(tmp_path)
    researcher_client.post(url, fields)
    source = _finish(PipelineRun.objects.get(), PipelineRun.Status.FAILED)
    form = researcher_client.get(clone_link(source)).context["form"]
    researcher_client.post(clone_link(source), {**_posted(form), "max_tokens": ["30"]})
    clone = PipelineRun.objects.exclude(pk=source.pk).get()
    expected = json.loads(json.dumps(source.config))
    expected["generate"]["sampling"]["max_tokens"] = 30
    assert clone.config == expected


def test_a_deleted_prompt_set_is_an_error_beside_its_field_not_a_crash(researcher_client, tmp_path):
    url, fields = _generate(tmp_path)
    researcher_client.post(url, fields)
    source = _finish(PipelineRun.objects.get(), PipelineRun.Status.CANCELLED)
    SeedPromptSet.objects.filter(pk=source.config["prompt_set_id"]).delete()
    page = researcher_client.get(clone_link(source))
    assert page.status_code == 200
    message = " ".join(page.context["form"].errors["prompt_set"])
    assert f"Run #{source.pk} used" in message and "no longer exists" in message
    assert message in page.content.decode().replace("&#x27;", "'")
    assert PipelineRun.objects.count() == 1


def test_only_finished_runs_of_the_forms_kind_are_cloned_and_only_by_researchers(
    researcher_client, client, annotator, tmp_path
):
    url, fields = _generate(tmp_path)
    researcher_client.post(url, fields)
    source = PipelineRun.objects.get()
    assert clone_link(source) is None  # queued: nothing to clone yet
    assert researcher_client.get(f"{url}?from_run={source.pk}").status_code == 403
    _finish(source)
    assert researcher_client.get(f"/aft/new/?from_run={source.pk}").status_code == 404  # another kind's form
    assert researcher_client.get(f"{url}?from_run=999999").status_code == 404
    assert researcher_client.get(f"{url}?from_run=abc").status_code == 404
    client.force_login(annotator)
    assert client.get(f"{url}?from_run={source.pk}").status_code == 403


def test_the_run_page_offers_clone_and_edit_for_a_finished_run(researcher_client, tmp_path):
    url, fields = _generate(tmp_path)
    researcher_client.post(url, fields)
    source = PipelineRun.objects.get()
    page = researcher_client.get(reverse("runs:detail", args=[source.pk])).content.decode()
    assert "Clone and edit" not in page
    _finish(source)
    page = researcher_client.get(reverse("runs:detail", args=[source.pk])).content.decode()
    assert f'href="{url}?from_run={source.pk}"' in page and "Clone and edit" in page


def test_a_lost_run_can_be_cancelled(researcher_client, tmp_path):
    url, fields = _generate(tmp_path)
    researcher_client.post(url, fields)
    run = _finish(PipelineRun.objects.get(), PipelineRun.Status.LOST)
    page = researcher_client.get(reverse("runs:detail", args=[run.pk])).content.decode()
    assert reverse("runs:cancel", args=[run.pk]) in page
    researcher_client.post(reverse("runs:cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.CANCELLED and run.cancel_requested
    assert run_services.run_resume(run=run).status == PipelineRun.Status.QUEUED  # still resumable

"""AugCon runs from the site: the form's defaults, every refusal made before queueing, the budget, and queueing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from webapp.augcon import services
from webapp.library.models import FewShotSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded, model_register_endpoint
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _post(corpus, qa_set, **fields) -> dict:
    data = {
        "corpus": corpus.pk,
        "few_shot_set": qa_set.pk,
        "model": model_ensure_embedded().pk,
        "preset": "",
        "max_documents": 2,
    }
    data.update(fields)
    return data


def test_the_form_shows_every_paper_default_with_its_explanation(researcher_client):
    page = researcher_client.get("/augcon/new/").content.decode()
    for name, default in (
        ("max_length", "500"),
        ("min_length", "20"),
        ("character_per_piece", "35"),
        ("over_generation", "1.15"),
        ("max_attempts", "4"),
        ("question_temperature", "0.85"),
        ("rouge_threshold", "0.7"),
        ("answer_temperature", "0.0"),
        ("judge_temperature", "0.2"),
        ("max_bootstrapped_demos", "3"),
    ):
        assert f'name="{name}"' in page and f'placeholder="{default}"' in page, name
    assert "Paper default: 1.15" in page and "until it has gen_count x this many questions" in page
    assert 'id="augcon-defaults"' in page and "LoRA r 32 alpha 32" in page
    assert 'placeholder="50"' in page  # scorer warmup steps


def test_a_valid_post_queues_a_run_with_the_layers_resolved(researcher_client, corpus, qa_set):
    response = researcher_client.post(
        "/augcon/new/",
        _post(
            corpus,
            qa_set,
            preset="tiny-cpu-demo",
            rouge_threshold=0.5,
            documents="1-2",
            scorer_lora_r=4,
            scorer_warmup_steps=0,
        ),
    )
    assert response.status_code == 302
    run = PipelineRun.objects.get()
    assert run.kind == "augcon" and run.queue_name == "gpu"
    config = run.config
    assert config["document_positions"] == [1, 2] and config["few_shot_set_id"] == qa_set.pk
    assert config["augcon"]["rouge_threshold"] == 0.5  # the form wins
    assert config["augcon"]["length_scale"] == 3.0  # from the preset
    assert config["augcon"]["over_generation"] == 1.15  # the paper's
    assert config["augcon"]["scorer"]["lora"] == {"r": 4, "alpha": 8, "dropout": 0.05, "target_modules": "all-linear"}
    assert config["augcon"]["scorer"]["trainer_overrides"] == {"warmup_steps": 0}


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"documents": "0-1, 7"}, "documents", "no document at position 7"),
        ({"documents": "a-b"}, "documents", "is not a position"),
        ({"documents": "5-2"}, "documents", "ends before it starts"),
        ({"min_length": 900}, "min_length", "must be below max_length"),
        ({"rouge_threshold": 1.5}, "rouge_threshold", "rouge_threshold"),
        ({"max_attempts": 0}, "max_attempts", "max_attempts"),
        ({"scorer_learning_rate": 0.5}, None, "scorer: learning_rate"),
        ({"seed": 10**12}, "seed", "seed must be an integer between 0 and 4294967295"),
        ({"max_chunks_per_document": 10**9}, "max_chunks_per_document", "max_chunks_per_document"),
        ({"rouge_tokenizer": "bert"}, "rouge_tokenizer", "bert"),
    ],
)
def test_bad_settings_are_refused_naming_the_problem_and_nothing_is_queued(
    researcher_client, corpus, qa_set, fields, field, fragment
):
    response = researcher_client.post("/augcon/new/", _post(corpus, qa_set, **fields))
    assert response.status_code == 400
    form = response.context["form"]
    errors = form.errors.get(field) if field else form.non_field_errors()
    assert errors and any(fragment in message for message in errors), form.errors
    assert not PipelineRun.objects.exists()


def test_the_papers_rouge_tokenizer_can_be_chosen_on_the_form(researcher_client, corpus, qa_set):
    pytest.importorskip("jieba")
    response = researcher_client.post("/augcon/new/", _post(corpus, qa_set, rouge_tokenizer="jieba"))
    assert response.status_code == 302
    assert PipelineRun.objects.get().config["augcon"]["rouge_tokenizer"] == "jieba"


def test_the_papers_rouge_tokenizer_is_refused_on_the_form_where_jieba_is_missing(
    researcher_client, corpus, qa_set, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "jieba", None)  # how Python marks a module as not importable
    response = researcher_client.post("/augcon/new/", _post(corpus, qa_set, rouge_tokenizer="jieba"))
    assert response.status_code == 400
    assert any("needs the jieba package" in message for message in response.context["form"].errors["rouge_tokenizer"])
    assert not PipelineRun.objects.exists()


def test_a_demonstration_set_or_a_set_without_splittable_examples_is_refused(corpus, qa_set):
    demonstration = FewShotSet.objects.create(name="hhh", kind=FewShotSet.Kind.DEMONSTRATION)
    with pytest.raises(ValidationError, match="needs a QA set"):
        services.augcon_config_build(model=model_ensure_embedded(), corpus=corpus, few_shot_set=demonstration)
    qa_set.examples.update(context="One sentence without an end")
    with pytest.raises(ValidationError, match="two or more sentences"):
        services.augcon_config_build(model=model_ensure_embedded(), corpus=corpus, few_shot_set=qa_set)


def test_an_endpoint_generator_needs_a_local_scorer_model(corpus, qa_set):
    endpoint = model_register_endpoint(name="remote", base_url="http://127.0.0.1:9/v1", served_model_name="m")
    with pytest.raises(ValidationError) as caught:
        services.augcon_config_build(model=endpoint, corpus=corpus, few_shot_set=qa_set)
    assert "model" in caught.value.message_dict and "remote endpoint" in caught.value.message_dict["model"][0]
    config = services.augcon_config_build(
        model=endpoint, corpus=corpus, few_shot_set=qa_set, scorer_model=model_ensure_embedded()
    )
    assert config["model_id"] == endpoint.pk and config["scorer_model_id"] == model_ensure_embedded().pk
    assert ModelEntry.objects.count() == 2


def test_the_estimate_shows_the_prompt_budget_or_the_problem(researcher_client, corpus, qa_set):
    page = researcher_client.post("/augcon/new/estimate/", _post(corpus, qa_set)).content.decode()
    assert "Ready to queue." in page and 'data-key="documents"><th>Documents</th><td class="num">2<' in page
    config = services.augcon_config_build(
        model=model_ensure_embedded(), corpus=corpus, few_shot_set=qa_set, max_documents=2
    )
    budget = services.augcon_budget(config)
    assert f'data-key="model-calls"><th>Model calls in all, expected</th><td class="num">{budget.model_calls_expected}<' in page
    assert budget.documents == 2 and budget.chunks == 2 and budget.question_target > budget.question_quota > 0
    assert "&quot;length_scale&quot;" in page  # the resolved settings, folded
    bad = researcher_client.post("/augcon/new/estimate/", _post(corpus, qa_set, documents="9")).content.decode()
    assert "no document at position 9" in bad and "Ready to queue" not in bad
    assert researcher_client.get("/augcon/new/estimate/").status_code == 405  # the form posts itself (hx-post)
    assert not PipelineRun.objects.exists()


def test_the_tree_page_of_a_missing_run_or_document_is_404(researcher_client, annotator, client):
    assert researcher_client.get("/augcon/runs/999/trees/doc00000/").status_code == 404
    client.force_login(annotator)
    assert client.get("/augcon/new/").status_code == 403


def test_the_papers_qlora_backbone_is_a_form_field_refused_where_no_worker_can_load_it(
    researcher_client, corpus, qa_set, settings
):
    page = researcher_client.get("/augcon/new/").content.decode()
    assert (
        'name="scorer_qlora"' in page and "QLoRA backbone (the paper&#x27;s; needs a CUDA GPU and bitsandbytes)" in page
    )

    settings.REFINERY_GPU_WORKERS = False  # no gpu worker with CUDA and bitsandbytes declared
    refused = researcher_client.post("/augcon/new/", _post(corpus, qa_set, scorer_qlora="on"))
    assert refused.status_code == 400 and not PipelineRun.objects.exists()
    message = refused.context["form"].errors["scorer_qlora"][0]
    assert "CUDA GPU and bitsandbytes" in message and "REFINERY_GPU_WORKERS" in message

    settings.REFINERY_GPU_WORKERS = True
    on_cpu = researcher_client.post("/augcon/new/", _post(corpus, qa_set, scorer_qlora="on", scorer_device="cpu"))
    assert on_cpu.status_code == 400 and "device is cpu" in on_cpu.context["form"].errors["scorer_qlora"][0]
    queued = researcher_client.post("/augcon/new/", _post(corpus, qa_set, scorer_qlora="on"))
    assert queued.status_code == 302
    assert PipelineRun.objects.get().config["augcon"]["scorer"]["qlora"] is True
    plain = researcher_client.post("/augcon/new/", _post(corpus, qa_set))
    assert plain.status_code == 302
    assert PipelineRun.objects.order_by("-pk").first().config["augcon"]["scorer"]["qlora"] is False

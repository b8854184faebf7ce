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
        "constrained_output": "on",  # a browser posts a ticked checkbox; absent would mean unticked
    }
    data.update(fields)
    return data


def _advanced_section(page: str) -> str:
    """The HTML of the form's "Advanced" section (partials/_form_fields.html)."""
    start = page.index('<details class="advanced"')
    return page[start : page.index("</details>", start)]


def test_the_form_shows_the_chosen_presets_values_and_the_papers_in_the_help(researcher_client):
    page = researcher_client.get("/augcon/new/").content.decode()
    preset = services.augcon_settings(preset="tiny-cpu-demo")  # the form's initial preset
    paper = services.augcon_settings()
    advanced = _advanced_section(page)
    for name in (
        "max_length",
        "min_length",
        "min_paragraph_length",
        "length_scale",
        "over_generation",
        "question_temperature",
        "rouge_threshold",
        "answer_temperature",
        "max_bootstrapped_demos",
    ):
        value = getattr(preset, name)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        assert f'name="{name}"' in advanced, name  # a method setting: under "Advanced"
        assert f'placeholder="{shown}" data-preset-field="{name}"' in advanced, name
    assert (
        preset.length_scale != paper.length_scale
        and f'placeholder="{paper.length_scale:g}" data-preset-field="length_scale"' not in page
    )
    assert "Paper default: 1.15" in page and "until it has gen_count x this many questions" in page
    assert 'id="augcon-defaults"' in page and "LoRA r 32 alpha 32" in page
    warmup = preset.scorer.trainer_overrides["warmup_steps"]
    assert f'placeholder="{warmup}" data-preset-field="scorer_warmup_steps"' in advanced
    assert '<details class="advanced" data-advanced>' in page  # closed: nothing differs from the preset


def test_the_essential_fields_stay_open_and_the_rest_are_advanced():
    from webapp.augcon.forms import AugConRunForm

    form = AugConRunForm()
    essential = [field.name for field in form.essential()]
    advanced = [field.name for field in form.advanced()]
    assert essential == list(AugConRunForm.essential_fields)
    assert set(essential) | set(advanced) == set(form.fields) and not set(essential) & set(advanced)
    assert {"min_paragraph_length", "scorer_learning_rate", "rouge_tokenizer"} <= set(advanced)


def test_the_advanced_section_opens_when_a_field_differs_from_the_preset_or_has_an_error(corpus, qa_set):
    from webapp.augcon.forms import AugConRunForm

    preset = services.augcon_settings(preset="tiny-cpu-demo")
    same = AugConRunForm(_post(corpus, qa_set, preset="tiny-cpu-demo", max_length=preset.max_length))
    assert not same.advanced_open()  # the preset's own value: nothing to show
    differs = AugConRunForm(_post(corpus, qa_set, preset="tiny-cpu-demo", max_length=preset.max_length + 1))
    assert differs.advanced_differences() == ["max_length"] and differs.advanced_open()
    wrong = AugConRunForm(_post(corpus, qa_set, max_attempts="many"))
    assert wrong.advanced_open() and "max_attempts" in wrong.errors


def test_without_a_preset_the_blank_fields_show_the_papers_defaults():
    from webapp.augcon.forms import AugConRunForm

    form = AugConRunForm(initial={"preset": ""})
    paper = services.augcon_settings()
    assert form.fields["over_generation"].widget.attrs["placeholder"] == f"{paper.over_generation:g}"
    assert form.fields["max_length"].widget.attrs["placeholder"] == str(paper.max_length)
    table = form.preset_value_table()
    assert table[""]["max_length"] == str(paper.max_length)
    assert table["tiny-cpu-demo"]["max_length"] == str(services.augcon_settings(preset="tiny-cpu-demo").max_length)


def test_a_valid_post_queues_a_run_with_the_layers_resolved(researcher_client, corpus, qa_set):
    response = researcher_client.post(
        "/augcon/new/",
        _post(
            corpus,
            qa_set,
            preset="tiny-cpu-demo",
            rouge_threshold=0.5,
            min_paragraph_length=50,  # the preset's 100 x length_scale 3 would leave out both short documents
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
    assert (
        f'data-key="model-calls"><th>Model calls in all, expected</th><td class="num">{budget.model_calls_expected}<'
        in page
    )
    assert budget.documents == 2 and budget.chunks == 2 and budget.question_target > budget.question_quota > 0
    assert "&quot;length_scale&quot;" in page  # the resolved settings, folded
    bad = researcher_client.post("/augcon/new/estimate/", _post(corpus, qa_set, documents="9")).content.decode()
    assert "no document at position 9" in bad and "Ready to queue" not in bad
    assert researcher_client.get("/augcon/new/estimate/").status_code == 405  # the form posts itself (hx-post)
    assert not PipelineRun.objects.exists()


def test_a_minimum_paragraph_length_that_drops_every_document_is_refused_with_the_reason(
    researcher_client, corpus, qa_set
):
    longest = max(len(document.text) for document in corpus.documents.all())
    fields = _post(corpus, qa_set, max_documents=3, min_paragraph_length=longest, length_scale=1)
    estimate = researcher_client.post("/augcon/new/estimate/", fields).content.decode()
    assert "The run would make nothing" in estimate and "Ready to queue" not in estimate
    assert "document 0 “The while statement”" in estimate and f"longer than {longest} characters" in estimate
    response = researcher_client.post("/augcon/new/", fields)
    assert response.status_code == 400
    message = " ".join(response.context["form"].errors["min_paragraph_length"])
    assert "document 2 “The del statement”" in message and "Lower the minimum paragraph length" in message
    assert '<details class="advanced" data-advanced open>' in response.content.decode()  # the field at fault shows
    assert not PipelineRun.objects.exists()


def test_documents_the_minimum_paragraph_length_drops_are_named_in_a_warning(researcher_client, corpus, qa_set):
    lengths = sorted(len(document.text) for document in corpus.documents.all())
    shortest = corpus.documents.get(text__regex=r"^Deletion")  # the shortest text
    assert len(shortest.text) == lengths[0]
    fields = _post(corpus, qa_set, max_documents=3, min_paragraph_length=lengths[0], length_scale=1)
    estimate = researcher_client.post("/augcon/new/estimate/", fields).content.decode()
    assert "1 of 3 documents give no question (2 kept)" in estimate
    assert f"document {shortest.position} “{shortest.title}” (longest paragraph {lengths[0]} characters)" in estimate
    assert "Ready to queue, but read the warning above first." in estimate


def test_the_corpus_and_few_shot_dropdowns_give_sizes_and_say_why_when_empty(researcher_client, corpus, qa_set):
    page = researcher_client.get("/augcon/new/").content.decode()
    assert f">reference — {corpus.document_count} documents</option>" in page
    assert ">qa — 3 examples</option>" in page
    FewShotSet.objects.create(name="dialogues", kind=FewShotSet.Kind.DEMONSTRATION)
    assert "dialogues" not in researcher_client.get("/augcon/new/").content.decode()  # not a QA set
    corpus.delete()
    empty = researcher_client.get("/augcon/new/").content.decode()
    assert 'data-empty-choice="corpus">No corpus yet' in empty and 'href="/library/corpora/upload/"' in empty


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

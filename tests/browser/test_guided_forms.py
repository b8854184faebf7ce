"""Forms that guide, in Chromium: a run that would make nothing is refused before queueing with the
reason, the grey hints follow the chosen preset, and dropdowns offer only what the form can use."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import needs_chromium, screenshot

pytestmark = [pytest.mark.browser, needs_chromium, pytest.mark.django_db(transaction=True)]

PASSWORD = "guided-forms-password"
SHORT_PARAGRAPHS = "Lists are mutable.\n\nTuples are not.\n\nBoth are sequences."


def _log_in(page, live_server, django_user_model) -> None:  # type: ignore[no-untyped-def]
    django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()


def test_augcon_refuses_a_minimum_paragraph_length_that_drops_the_only_document(
    browser_page, live_server, django_user_model
):
    from playwright.sync_api import expect

    from webapp.augcon.services import augcon_settings
    from webapp.library.models import Corpus, Document, FewShotExample, FewShotSet
    from webapp.registry.models import ModelEntry
    from webapp.runs.models import PipelineRun

    corpus = Corpus.objects.create(name="notes", document_count=1)
    Document.objects.create(corpus=corpus, position=0, title="Sequences", text=SHORT_PARAGRAPHS)
    qa = FewShotSet.objects.create(name="qa", kind=FewShotSet.Kind.QA, example_count=1)
    FewShotExample.objects.create(
        few_shot_set=qa,
        position=0,
        context="A list is mutable. A tuple is immutable.",
        question="How do lists and tuples differ?",
        answer="Lists can change; tuples cannot.",
    )
    ModelEntry.objects.create(name="SmolLM2-135M-Instruct", source=ModelEntry.Source.LOCAL, path="/m/s")
    page = browser_page
    _log_in(page, live_server, django_user_model)

    page.goto(f"{live_server.url}/augcon/new/")
    page.select_option("select[name=corpus]", label="notes — 1 document")
    page.select_option("select[name=few_shot_set]", label="qa — 1 example")
    page.select_option("select[name=model]", label="SmolLM2-135M-Instruct")
    estimate = page.locator("#augcon-estimate")
    expect(estimate).to_contain_text("The run would make nothing")
    expect(estimate).to_contain_text("document 0 “Sequences”")
    expect(estimate).not_to_contain_text("Ready to queue")
    # The hints are the preset's, and follow the preset as it changes.
    tiny = augcon_settings(preset="tiny-cpu-demo")
    length_scale = page.locator("input[name=length_scale]")
    assert length_scale.get_attribute("placeholder") == f"{tiny.length_scale:g}"
    assert page.locator("details[data-advanced]").get_attribute("open") is None
    screenshot(page, "augcon-empty-run-refused")

    page.get_by_role("button", name="Start AugCon").click()
    page.wait_for_load_state()
    assert page.locator("details[data-advanced]").get_attribute("open") is not None  # the field at fault shows
    expect(page.locator("details[data-advanced]")).to_contain_text("Lower the minimum paragraph length")
    assert not PipelineRun.objects.exists()

    page.select_option("select[name=preset]", value="")
    assert length_scale.get_attribute("placeholder") == f"{augcon_settings().length_scale:g}"
    page.fill("input[name=min_paragraph_length]", "5")
    page.locator("input[name=min_paragraph_length]").dispatch_event("change")
    expect(estimate).to_contain_text("Ready to queue.")
    expect(estimate.locator('[data-key="chunks"] td.num')).not_to_have_text("0")


def test_dropdowns_offer_only_fitting_datasets_and_an_empty_one_links_to_where_to_make_one(
    browser_page, live_server, django_user_model, tmp_path
):
    from pipelines.training.config import PreferenceConfig
    from pipelines.training.presets import training_preset
    from webapp.library.models import Artifact
    from webapp.runs.services import artifact_register

    rows = {
        "qa-sft": [{"prompt": "p", "response": "r"}] * 3,
        "prefs": [{"prompt": "p", "chosen": "c", "rejected": "r"}] * 2,
        "queries-only": [{"document_id": "d", "query": "q"}] * 4,
    }
    for name, content in rows.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in content))
        artifact_register(run=None, name=name, kind=Artifact.Kind.SFT, jsonl_path=path)
    page = browser_page
    _log_in(page, live_server, django_user_model)

    page.goto(f"{live_server.url}/spin/new/")
    options = page.locator("select[name=dataset] option").all_inner_texts()
    assert options[1:] == ["qa-sft (imported) — 3 rows"]  # SFT-shaped only; the first is the blank choice
    page.goto(f"{live_server.url}/training/new/")
    options = page.locator("select[name=dataset] option").all_inner_texts()
    assert sorted(options[1:]) == ["prefs (imported) — 2 rows", "qa-sft (imported) — 3 rows"]
    visible = "select[name=dataset] option[data-fits]:not([hidden])"
    assert page.locator(visible).all_inner_texts() == ["qa-sft (imported) — 3 rows"]  # the SFT trainer, first
    assert page.locator("input[name=beta]").get_attribute("placeholder") in (None, "")  # SFT has no beta
    page.select_option("select[name=trainer]", value="preference")
    assert page.locator(visible).all_inner_texts() == ["prefs (imported) — 2 rows"]
    preference = training_preset("tiny-cpu-demo").apply(PreferenceConfig())  # the form's initial preset
    assert page.locator("input[name=beta]").get_attribute("placeholder") == f"{preference.beta:g}"
    page.goto(f"{live_server.url}/annotation/new/")
    assert page.locator("select[name=artifact] option").all_inner_texts()[1:] == ["prefs (imported) — 2 rows"]

    Artifact.objects.filter(name="prefs").delete()
    page.goto(f"{live_server.url}/annotation/new/")
    empty = page.locator('[data-empty-choice="artifact"]')
    assert "No pairwise" in empty.inner_text()
    screenshot(page, "campaign-no-pairs")
    empty.get_by_role("link", name="Make one").click()
    page.wait_for_load_state()
    assert page.url.endswith("/library/datasets/upload/")

"""Double submit: a run form POSTed twice with the same submission key queues one run (webapp/core/submissions.py).

The key is what every form rendered with the shared `_form_fields.html` partial carries; the tests
post through the real views (generate, AugCon, evaluation) and race two requests on the real database.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from tests.fixtures.generate_runs import prompt_set_of, small_generate_config
from webapp.core.submissions import DuplicateSubmission
from webapp.evaluation.models import Evaluation
from webapp.library.models import Corpus, Document, FewShotExample, FewShotSet, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER_KEY = "0f9e8d7c6b5a49382716f5e4d3c2b1a0"


@pytest.fixture
def prompt_set() -> SeedPromptSet:
    return prompt_set_of(3, "three")


def _generate_post(prompt_set: SeedPromptSet, key: str | None) -> dict:
    data = {
        "model": model_ensure_embedded().pk,
        "prompt_set": prompt_set.pk,
        "n": 1,
        "max_tokens": 8,
        "temperature": 0.7,
        "top_p": 0.95,
        "seed": 0,
        "batch_size": 2,
    }
    if key is not None:
        data["submission_key"] = key
    return data


def _rendered_key(html: str) -> str:
    match = re.search(r'<input type="hidden" name="submission_key" value="(\w+)">', html)
    assert match, "the form carries no submission key"
    return match.group(1)


def test_every_rendered_run_form_carries_a_fresh_submission_key(researcher_client):
    first = _rendered_key(researcher_client.get("/generate/new/").content.decode())
    second = _rendered_key(researcher_client.get("/generate/new/").content.decode())
    assert len(first) == 32 and first != second
    assert _rendered_key(researcher_client.get("/augcon/new/").content.decode())


def test_the_generate_form_posted_twice_with_one_key_queues_one_run(researcher_client, prompt_set):
    key = _rendered_key(researcher_client.get("/generate/new/").content.decode())

    first = researcher_client.post("/generate/new/", _generate_post(prompt_set, key))
    again = researcher_client.post("/generate/new/", _generate_post(prompt_set, key), follow=True)

    run = PipelineRun.objects.get()
    assert first.status_code == 302 and first["Location"] == run.get_absolute_url()
    assert again.redirect_chain == [(run.get_absolute_url(), 302)]
    assert f"already submitted: it queued run #{run.pk}" in again.content.decode()
    assert run.submission_key == key

    fresh = researcher_client.post("/generate/new/", _generate_post(prompt_set, OTHER_KEY))
    assert fresh.status_code == 302 and PipelineRun.objects.count() == 2


def test_a_form_shown_again_with_errors_keeps_its_key_and_the_corrected_post_queues_once(researcher_client, prompt_set):
    refused = researcher_client.post("/generate/new/", {**_generate_post(prompt_set, KEY), "top_p": 5})
    assert refused.status_code == 400 and _rendered_key(refused.content.decode()) == KEY

    for _ in range(2):
        researcher_client.post("/generate/new/", _generate_post(prompt_set, KEY))
    assert PipelineRun.objects.count() == 1


def test_a_post_without_a_key_still_queues_and_a_malformed_key_is_refused(researcher_client, prompt_set):
    assert researcher_client.post("/generate/new/", _generate_post(prompt_set, None)).status_code == 302
    assert researcher_client.post("/generate/new/", _generate_post(prompt_set, None)).status_code == 302
    assert PipelineRun.objects.count() == 2

    refused = researcher_client.post("/generate/new/", _generate_post(prompt_set, "x" * 65))
    assert refused.status_code == 400 and "submission_key must be 8 to 64 letters or digits" in refused.content.decode()
    assert PipelineRun.objects.count() == 2


def test_another_users_key_is_refused(researcher_client, prompt_set, make_user, client):
    researcher_client.post("/generate/new/", _generate_post(prompt_set, KEY))
    client.force_login(make_user("researcher", username="other-researcher"))
    response = client.post("/generate/new/", _generate_post(prompt_set, KEY))
    assert response.status_code == 403 and PipelineRun.objects.count() == 1


def _augcon_inputs() -> tuple[Corpus, FewShotSet]:
    corpus = Corpus.objects.create(name="reference", document_count=1)
    Document.objects.create(
        corpus=corpus,
        position=0,
        title="The pass statement",
        text="The pass statement is a null operation: when it is executed, nothing happens. It is useful as a "
        "placeholder when a statement is required syntactically but no code needs to be executed.",
    )
    qa_set = FewShotSet.objects.create(name="qa", kind=FewShotSet.Kind.QA, example_count=3)
    lines = (REPOSITORY_ROOT / "webapp/library/demo/fewshot_qa.jsonl").read_text().splitlines()
    for position, line in enumerate(lines[:3]):
        FewShotExample.objects.create(few_shot_set=qa_set, position=position, **json.loads(line))
    return corpus, qa_set


def test_the_augcon_form_posted_twice_with_one_key_queues_one_run(researcher_client):
    corpus, qa_set = _augcon_inputs()
    data = {
        "corpus": corpus.pk,
        "few_shot_set": qa_set.pk,
        "model": model_ensure_embedded().pk,
        "preset": "tiny-cpu-demo",
        "min_paragraph_length": 50,  # the preset's 100 x length_scale 3 would leave the one short document out
        "max_documents": 1,
        "submission_key": KEY,
    }

    first = researcher_client.post("/augcon/new/", data)
    again = researcher_client.post("/augcon/new/", data)

    run = PipelineRun.objects.get(kind="augcon")
    assert first.status_code == 302, first.content.decode()[:2000]
    assert again.status_code == 302 and again["Location"] == run.get_absolute_url()
    assert researcher_client.post("/augcon/new/", {**data, "submission_key": OTHER_KEY}).status_code == 302
    assert PipelineRun.objects.filter(kind="augcon").count() == 2


def test_the_evaluation_form_posted_twice_keeps_one_evaluation_and_one_run(researcher_client):
    judge = ModelEntry.objects.create(name="judge", source=ModelEntry.Source.LOCAL, path="/models/judge")
    model = model_ensure_embedded()

    def post():  # a fresh upload object per request, as a browser sends it
        upload = SimpleUploadedFile("questions.jsonl", b'{"instruction": "Say hi."}\n')
        return researcher_client.post(
            "/evaluations/new/",
            {
                "candidate_models": [model.pk],
                "baseline_model": model.pk,
                "prompts_file": upload,
                "judge": judge.pk,
                "max_tokens": 32,
                "candidate_temperature": 1.0,
                "baseline_temperature": 0.2,
                "seed": 3,
                "judge_max_tokens": 8,
                "judge_retries": 1,
                "bootstrap_rounds": 200,
                "judge_method": "logprob",
                "submission_key": KEY,
            },
        )

    assert post().status_code == 302
    again = post()
    # The evaluation's own row, saved before its run, is rolled back with the refused second run.
    assert Evaluation.objects.count() == 1 and PipelineRun.objects.count() == 1
    assert again.status_code == 302 and again["Location"] == PipelineRun.objects.get().get_absolute_url()


@pytest.mark.django_db(transaction=True)
def test_two_racing_submissions_with_one_key_queue_one_run(live_settings, researcher, prompt_set):
    """Both requests pass the look-up before either commits: the unique key decides, the loser is told which run won."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers: there is no race to lose")
    config = small_generate_config(prompt_set, max_tokens=8)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def submit() -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait(timeout=10)
            outcomes.append(
                services.run_create(user=researcher, kind="generate", config=config, submission_key=KEY)
            )
        except DuplicateSubmission as duplicate:
            outcomes.append(duplicate)
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    run = PipelineRun.objects.get()
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["DuplicateSubmission", "PipelineRun"]
    duplicate = next(outcome for outcome in outcomes if isinstance(outcome, DuplicateSubmission))
    assert duplicate.existing.pk == run.pk

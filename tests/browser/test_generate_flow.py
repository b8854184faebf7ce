"""A researcher's first session, driven in Debian's Chromium: log in, upload a corpus and seed prompts,
start a generate run, watch it finish live, and open the generated dataset.

Everything is real: pytest-django's `live_server`, a Redis, an `rqworker` subprocess and the bundled
135M model. Set REFINERY_SCREENSHOTS=1 to refresh the README's screenshots in docs/screenshots/.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.browser.conftest import needs_chromium, screenshot

RUN_FINISH_TIMEOUT_MS = 240_000
PASSWORD = "a-browser-test-password-42"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]

CORPUS_JSONL = (
    '{"text": "A list is a mutable sequence. Lists are written in square brackets.", "title": "Lists"}\n'
    '{"text": "A tuple is an immutable sequence, usually written with parentheses.", "title": "Tuples"}\n'
    '{"text": "A dict maps hashable keys to values and keeps insertion order.", "title": "Dicts"}\n'
)
SEED_PROMPTS_TXT = "What is a Python list?\nName one difference between a tuple and a list.\n"




def _fill_if_present(page, selector: str, value: str) -> None:
    if page.locator(selector).count():
        page.fill(selector, value)


def test_researcher_uploads_data_starts_a_generate_run_and_sees_its_dataset(
    transactional_db,
    live_server,
    redis_url,
    live_settings,
    rq_worker,
    django_user_model,
    browser_page,
    tmp_path,
    settings,
):
    from playwright.sync_api import expect

    from pipelines.llm.embedded import ensure_embedded_model
    from webapp.library.models import SeedPromptSet
    from webapp.registry.services import model_ensure_embedded

    page = browser_page
    base = live_server.url
    # Convert the bundled weights up front (once per cache), so the run's time limit measures the run.
    ensure_embedded_model(settings.MODEL_CACHE_DIR)
    model = model_ensure_embedded()
    django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    worker = rq_worker().wait_ready()

    # Log in through the form.
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "login failed"

    # Upload a corpus.
    corpus_file = tmp_path / "python-notes.jsonl"
    corpus_file.write_text(CORPUS_JSONL)
    page.goto(f"{base}/library/corpora/upload/")
    page.fill("input[name=name]", "Python notes")
    _fill_if_present(page, "[name=description]", "Three short notes for the browser test.")
    page.set_input_files("input[name=file]", str(corpus_file))
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_text(re.compile(r"\b3 documents\b")).first).to_be_visible()

    # Upload a seed prompt set.
    prompts_file = tmp_path / "seed-prompts.txt"
    prompts_file.write_text(SEED_PROMPTS_TXT)
    page.goto(base + reverse("library:seedset-upload"))
    page.fill("input[name=name]", "Browser prompts")
    _fill_if_present(page, "[name=description]", "Two questions.")
    page.set_input_files("input[name=file]", str(prompts_file))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_load_state()
    prompt_set = SeedPromptSet.objects.filter(name="Browser prompts").first()
    assert prompt_set is not None, (
        f"the seed prompt upload did not create a set; the page said:\n{page.inner_text('body')[:2000]}"
    )
    expected_rows = prompt_set.prompts.count()
    assert expected_rows >= 1

    # Start a generate run with a short answer length.
    page.goto(f"{base}/generate/new/")
    page.fill("input[name=name]", "Browser test run")
    page.select_option("select[name=model]", value=str(model.pk))
    page.select_option("select[name=prompt_set]", value=str(prompt_set.pk))
    page.fill("input[name=n]", "1")
    page.fill("input[name=max_tokens]", "8")
    page.locator("details.advanced > summary").click()  # sampling settings sit under "Advanced"
    page.fill("input[name=temperature]", "0.7")
    page.get_by_role("button", name="Start run", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))

    # The status updates through htmx polling, without reloading the page.
    status = page.locator("#run-status")
    try:
        expect(status).to_have_text("Succeeded", timeout=RUN_FINISH_TIMEOUT_MS)
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- worker log ---\n{worker.log_text()[-4000:]}") from error
    screenshot(page, "run-detail")

    # The generated dataset is browsable.
    page.get_by_role("link", name=re.compile(r"^Open artifact")).first.click()
    page.wait_for_load_state()
    table = page.locator("#artifact-rows") if page.locator("#artifact-rows").count() else page.locator("table").first
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(expected_rows)
    expect(table).to_contain_text(prompt_set.prompts.order_by("position").first().text)

    response = page.goto(f"{base}/dashboard/")
    assert response is not None and response.ok, f"dashboard answered {response and response.status}"
    screenshot(page, "dashboard")

"""Clone and edit, in Debian's Chromium: a finished generate run's page -> "Clone and edit" -> the form
holds the run's settings -> one is changed -> "Start run" queues a new run with that change and its lineage.

Real parts: pytest-django's `live_server`, Redis (the new run is enqueued), PostgreSQL. No worker: the
source run is finished by writing its status, and the new run only needs to be queued.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import needs_chromium, screenshot
from tests.fixtures.generate_runs import prompt_set_of, small_generate_config

PASSWORD = "a-browser-test-password-42"

pytestmark = [pytest.mark.browser, needs_chromium]


def test_a_finished_run_is_cloned_edited_and_queued_again(
    transactional_db, live_server, live_settings, django_user_model, browser_page
):
    from playwright.sync_api import expect

    from webapp.runs import services
    from webapp.runs.models import PipelineRun

    researcher = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    config = small_generate_config(prompt_set_of(2, "two prompts"), n=3, max_tokens=12, temperature=0.4, seed=5)
    source = services.run_create(user=researcher, kind="generate", config=config, name="first try")
    PipelineRun.objects.filter(pk=source.pk).update(status=PipelineRun.Status.SUCCEEDED)

    page = browser_page
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()

    page.goto(f"{base}/runs/{source.pk}/")
    page.get_by_role("link", name="Clone and edit").click()
    page.wait_for_url(re.compile(rf"/generate/new/\?from_run={source.pk}$"))
    expect(page.get_by_text(f"The form holds the settings of run #{source.pk}")).to_be_visible()
    form = page.locator("#generate-form")
    assert form.locator("input[name=n]").input_value() == "3"
    assert form.locator("input[name=max_tokens]").input_value() == "12"
    assert form.locator("input[name=temperature]").input_value() == "0.4"
    assert form.locator("input[name=seed]").input_value() == "5"
    assert form.locator("select[name=prompt_set]").input_value() == str(config["prompt_set_id"])
    screenshot(page, "clone-and-edit")

    form.locator("input[name=max_tokens]").fill("20")
    form.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    clone = PipelineRun.objects.exclude(pk=source.pk).get()
    assert page.url.endswith(f"/runs/{clone.pk}/")
    expected = {**config, "generate": {**config["generate"], "sampling": {**config["generate"]["sampling"]}}}
    expected["generate"]["sampling"]["max_tokens"] = 20
    assert clone.config == expected
    assert clone.parent_id == source.pk and clone.summary["cloned_from"] == source.pk
    assert clone.status == PipelineRun.Status.QUEUED

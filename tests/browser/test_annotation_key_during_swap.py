"""A key pressed while the workspace swaps to the next item is never applied to an item the annotator has
not seen, and never lost unseen: the page says which key was ignored, and the next key works as usual."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import needs_chromium
from tests.browser.test_annotation_workspace import PASSWORD, _write_pairs

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


def test_a_key_pressed_during_the_swap_is_ignored_with_a_visible_hint(
    transactional_db, live_server, browser_page, django_user_model, tmp_path
):
    from playwright.sync_api import expect

    from webapp.annotation import services
    from webapp.annotation.models import Judgment
    from webapp.library.models import Rubric
    from webapp.runs.services import artifact_register

    researcher = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    ada = django_user_model.objects.create_user(username="ada", password=PASSWORD, role="annotator")
    artifact = artifact_register(
        run=None,
        name=f"pairs-{uuid.uuid4().hex[:6]}",
        kind="comparisons",
        jsonl_path=_write_pairs(tmp_path / "p.jsonl", 3),
    )
    campaign = services.campaign_create(
        user=researcher,
        name="Swap check",
        artifact=artifact,
        rubric=Rubric.objects.create(name="R"),
        sample_size=3,
        overlap=1,
        assignees=[ada],
        flags=[],
        seed=5,
    )
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.goto(f"{live_server.url}/annotation/{campaign.pk}/work/")
    expect(page.locator("#ws-form[data-ready=true]")).to_be_visible()
    first = page.locator("#ws-form").get_attribute("data-item")

    # Hold the judgment's request in flight, so the second key lands in the middle of the swap.
    held = []
    page.route("**/work/judge/", lambda route: held.append(route))
    page.keyboard.press("1")
    page.wait_for_function("() => true")  # let Playwright deliver the intercepted request
    while not held:
        page.wait_for_timeout(20)
    page.keyboard.press("2")
    hint = page.locator("#ws-key-hint")
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("“2” was not applied: the next item was still loading")
    held[0].continue_()
    page.unroute("**/work/judge/")

    page.wait_for_function(
        "first => { const f = document.querySelector('#ws-form'); return f && f.dataset.item !== first && f.dataset.ready === 'true'; }",
        arg=first,
    )
    second = page.locator("#ws-form").get_attribute("data-item")
    expect(hint).to_be_visible()  # the hint outlives the swap: the annotator sees why nothing happened
    assert list(Judgment.objects.filter(item_id=first).values_list("choice", flat=True)) == ["left"]
    assert not Judgment.objects.filter(item_id=second).exists(), "the key was not applied to an unseen item"

    page.keyboard.press("3")
    page.wait_for_function(
        "second => { const f = document.querySelector('#ws-form'); return !f || (f.dataset.item !== second && f.dataset.ready === 'true'); }",
        arg=second,
    )
    expect(hint).to_be_hidden()
    assert Judgment.objects.filter(item_id=second).count() == 1

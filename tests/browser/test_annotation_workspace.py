"""An annotator judges ten pairs in Debian's Chromium with the keyboard only: choose, flag, comment,
reload with a draft, undo; every judgment is in the database exactly once. Also checks the side-by-side
layout at laptop width and the stacked layout at phone width.

Real pieces only: pytest-django's `live_server`, the project's htmx and workspace script, the database.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.browser.conftest import needs_chromium, screenshot

PASSWORD = "an-annotator-password-42"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]




def _current_item(page) -> str:
    return page.locator("#ws-form").get_attribute("data-item")


def _press_and_wait_for_next(page, key: str, shown: str) -> str:
    page.keyboard.press(key)
    page.wait_for_function(
        # The new item is shown and its keys are live (the workspace drops keys until it is ready).
        "shown => { const f = document.querySelector('#ws-form'); return !f || (f.dataset.item !== shown && f.dataset.ready === 'true'); }",
        arg=shown,
    )
    return _current_item(page) if page.locator("#ws-form").count() else ""


def _write_pairs(path: Path, count: int) -> Path:
    import json

    with path.open("w") as handle:
        for index in range(1, count + 1):
            handle.write(json.dumps({
                "prompt": f"Prompt {index}: explain list comprehensions.",
                "chosen": f"Answer {index}: [x * 2 for x in items] builds a new list.",
                "rejected": f"Answer {index}: no idea.",
                "chosen_config": "cfg-big", "rejected_config": "cfg-small",
            }) + "\n")
    return path


def test_annotator_judges_with_the_keyboard_survives_a_reload_and_undoes(
    transactional_db, live_server, browser_page, django_user_model, tmp_path
):
    from playwright.sync_api import expect

    from webapp.annotation import services
    from webapp.annotation.models import Judgment
    from webapp.library.models import Rubric
    from webapp.runs.services import artifact_register

    page = browser_page
    base = live_server.url
    researcher = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    ada = django_user_model.objects.create_user(username="ada", password=PASSWORD, role="annotator")
    artifact = artifact_register(
        run=None, name=f"pairs-{uuid.uuid4().hex[:6]}", kind="comparisons", jsonl_path=_write_pairs(tmp_path / "p.jsonl", 11)
    )
    rubric = Rubric.objects.create(name="Browser rubric", guidelines="Prefer the answer that explains correctly.")
    campaign = services.campaign_create(
        user=researcher, name="Browser spot check", artifact=artifact, rubric=rubric, sample_size=11, overlap=1,
        assignees=[ada], flags=["factual error", "harmful"], seed=5,
    )

    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_role("link", name="Start").click()
    expect(page.locator("#ws-form")).to_be_visible()
    expect(page.locator(".ws-guidelines")).to_contain_text("Prefer the answer that explains correctly.")
    screenshot(page, "annotation-workspace")

    # Laptop width: the two responses sit side by side.
    left, right = page.locator("#ws-left").bounding_box(), page.locator("#ws-right").bounding_box()
    assert abs(left["y"] - right["y"]) < 2 and right["x"] > left["x"] + left["width"]

    page.keyboard.press("?")
    expect(page.locator("#ws-help")).to_be_visible()
    page.keyboard.press("?")
    expect(page.locator("#ws-help")).to_be_hidden()

    first = _current_item(page)
    second = _press_and_wait_for_next(page, "1", first)
    assert Judgment.objects.filter(item_id=first).count() == 1

    # A draft: tick the first flag and write a comment, then reload; both survive.
    page.keyboard.press("f")
    expect(page.locator("#ws-flags")).to_have_class("ws-flags active")
    page.keyboard.press("1")
    page.keyboard.press("f")
    page.keyboard.press("c")
    page.keyboard.type("needs a source")
    page.keyboard.press("Escape")
    page.reload()
    expect(page.locator("#ws-form")).to_have_attribute("data-item", second)
    expect(page.locator("#ws-form")).to_have_attribute("data-ready", "true")
    expect(page.locator("#ws-comment")).to_have_value("needs a source")
    expect(page.locator("input[name=flags][value='factual error']")).to_be_checked()
    expect(page.locator("input[name=flags][value='harmful']")).not_to_be_checked()
    third = _press_and_wait_for_next(page, "2", second)
    stored = Judgment.objects.get(item_id=second)
    assert (stored.choice, stored.flags, stored.comment) == ("right", ["factual error"], "needs a source")

    fourth = _press_and_wait_for_next(page, "3", third)
    expect(page.locator("#ws-judged")).to_have_text("3")

    # Undo brings the third item back, with the earlier answer marked; judge it again.
    back = _press_and_wait_for_next(page, "u", fourth)
    assert back == third
    expect(page.locator("button[data-key='3']")).to_have_class("earlier")
    assert Judgment.objects.filter(item_id=third, withdrawn_at__isnull=False).count() == 1
    after = _press_and_wait_for_next(page, "4", third)
    assert after == fourth

    current = Judgment.objects.filter(item__campaign=campaign, withdrawn_at__isnull=True)
    assert sorted(current.values_list("item_id", flat=True)) == sorted(int(i) for i in (first, second, third))
    assert current.get(item_id=third).verdict == "both_bad"
    assert Judgment.objects.filter(item__campaign=campaign).count() == 4  # three current, one withdrawn

    # Seven more by key alone: ten judgments in all, each stored exactly once.
    shown = after
    for number in range(7):
        shown = _press_and_wait_for_next(page, "1234"[number % 4], shown)
    expect(page.locator("#ws-judged")).to_have_text("10")
    current = Judgment.objects.filter(item__campaign=campaign, withdrawn_at__isnull=True)
    judged_items = list(current.values_list("item_id", flat=True))
    assert len(judged_items) == 10 and len(set(judged_items)) == 10
    assert Judgment.objects.filter(item__campaign=campaign).count() == 11  # ten current, one withdrawn

    # Phone width: the responses stack.
    page.set_viewport_size({"width": 390, "height": 844})
    left, right = page.locator("#ws-left").bounding_box(), page.locator("#ws-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"]
    screenshot(page, "annotation-workspace-phone")

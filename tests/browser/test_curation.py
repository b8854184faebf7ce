"""The curation loop in Chromium: search, filter, drop a row by key, edit a response in place, save as new."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.browser.conftest import needs_chromium, screenshot

pytestmark = [needs_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "curation-browser-password"
TOPICS = ["cooking", "gardening", "chess"]


def _log_in(page, base: str, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()


def test_search_filter_drop_edit_and_save_as_a_new_artifact(browser_page, live_server, django_user_model, tmp_path):
    from playwright.sync_api import expect

    from webapp.library.models import Artifact
    from webapp.runs.services import artifact_register

    rows = [
        {
            "prompt": f"Question {index} about {TOPICS[index % 3]}",
            "response": f"Answer {index}:\n\n```python\nprint({index})\n```",
            "topic": TOPICS[index % 3],
        }
        for index in range(40)
    ]
    rows[7]["response"] = "<script>document.title='pwned'</script> see [this](javascript:alert(1))"
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    artifact = artifact_register(run=None, name="answers", kind=Artifact.Kind.SFT, jsonl_path=path)
    django_user_model.objects.create_user(username="cora", password=PASSWORD, role="researcher")
    page, base = browser_page, live_server.url
    script_problems: list[str] = []  # exceptions in our scripts, and anything the CSP blocked
    page.on("pageerror", lambda error: script_problems.append(str(error)))
    page.on(
        "console",
        lambda message: script_problems.append(message.text) if "Content Security Policy" in message.text else None,
    )
    _log_in(page, base, "cora")

    page.goto(f"{base}{artifact.get_absolute_url()}")
    table = page.locator("#artifact-rows")
    expect(table.locator("tbody tr")).to_have_count(25)  # paged, not all 40
    expect(table.locator("tr#row-0 pre code")).to_contain_text("print(0)")  # code blocks render
    assert page.title() != "pwned" and table.locator("tr#row-7 a").count() == 0  # escaped, link left as text
    expect(table.locator("tr#row-7")).to_contain_text("<script>document.title='pwned'</script>")

    # Search: every word, any text field.
    page.fill("input[name=q]", "chess question")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#curation-matches")).to_have_text("13 of 40 rows match.")
    # Filter by a column's value, on top of the search.
    page.select_option("select[name=column]", "topic")
    page.fill("input[name=value]", "chess")
    page.fill("input[name=q]", "")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#curation-matches")).to_have_text("13 of 40 rows match.")
    expect(table.locator("tbody tr")).to_have_count(13)

    # Drop row 3 (index 2) with the keyboard: select it, press d.
    table.locator("tr#row-2 td.num").click()
    page.keyboard.press("d")
    expect(table.locator("tr#row-2")).to_have_class(re.compile(r"\bis-dropped\b"))
    expect(page.locator('[data-count="dropped"]')).to_have_text("1")

    # Edit row 6's response (index 5): j moves to it, e opens the form, Ctrl+Enter saves.
    page.keyboard.press("j")
    expect(page.locator("tr#row-5")).to_be_focused()
    page.keyboard.press("e")
    box = table.locator("tr#row-5 textarea[name=response]")
    expect(box).to_be_focused()
    box.fill("A **better** answer about chess.")
    page.keyboard.press("Control+Enter")
    expect(table.locator("tr#row-5 strong")).to_have_text("better")
    expect(page.locator('[data-count="edited"]')).to_have_text("1")

    # A reload loses nothing: the draft is on the server.
    page.reload()
    expect(table.locator("tr#row-2")).to_have_class(re.compile(r"\bis-dropped\b"))
    expect(table.locator("tr#row-5 strong")).to_have_text("better")
    # The load line names the file a download saves, not a path on the server.
    expect(page.get_by_text("Once downloaded, load it with")).to_contain_text('data_files="artifact-answers.jsonl"')
    screenshot(page, "curation")

    page.fill("input[name=name]", "answers, curated")
    page.get_by_role("button", name="Save as new artifact").click()
    page.wait_for_url(re.compile(r"/runs/artifacts/\d+/$"))
    expect(page.locator("#artifact-lineage")).to_contain_text("Curated from answers by cora")
    expect(page.locator("#artifact-lineage")).to_contain_text("1 of 40 rows dropped, 1 edited")

    child = Artifact.objects.get(name="answers, curated")
    saved = [json.loads(line) for line in Path(child.jsonl_path).read_text(encoding="utf-8").splitlines()]
    assert child.parent_id == artifact.pk and child.row_count == 39 == len(saved)
    assert (
        saved[4]["response"] == "A **better** answer about chess." and saved[2]["prompt"] == "Question 3 about cooking"
    )
    assert Path(artifact.jsonl_path).read_text(encoding="utf-8").count("\n") == 40  # the parent is unchanged
    page.locator("#artifact-lineage a").click()
    expect(page.locator("h1")).to_have_text("Artifact “answers”")

    # A refused action (here: a row the artifact does not have) shows its reason, and changes nothing.
    page.evaluate(
        """() => {
        const button = document.querySelector('#row-0 [data-key=f]');
        button.setAttribute('hx-post', button.getAttribute('hx-post').replace('/rows/0/', '/rows/999/'));
        htmx.process(button);
    }"""
    )
    page.locator("#row-0 [data-key=f]").click()
    expect(page.locator("#curation-error")).to_have_text("Row 1000 does not exist: “answers” has 40 rows.")
    expect(table.locator("tr#row-0")).not_to_have_class(re.compile(r"\bis-flagged\b"))
    assert script_problems == []

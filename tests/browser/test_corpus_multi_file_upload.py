"""Corpus upload in Chromium: several files chosen at once become one corpus; one bad file refuses them all."""

from __future__ import annotations

import pytest

from tests.browser.conftest import needs_chromium, screenshot

pytestmark = [needs_chromium, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "multi-file-password"


def _file(name: str, content: bytes) -> dict[str, object]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": content}


def test_several_files_chosen_at_once_make_one_corpus_and_a_bad_one_refuses_all(
    browser_page, live_server, django_user_model
):
    from webapp.library.models import Corpus

    django_user_model.objects.create_user(username="uma", password=PASSWORD, role="researcher")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "uma")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/library/corpora/upload/")
    page.fill("input[name=name]", "Refused together")
    page.set_input_files(
        "input[name=file]",
        [_file("good.jsonl", b'{"text": "A good line."}\n'), _file("bad.jsonl", b'{"text": "fine"}\n{"title": "x"}\n')],
    )
    page.get_by_role("button", name="Upload").click()
    page.wait_for_load_state()
    assert page.locator("#upload-problem").inner_text().startswith("bad.jsonl, line 2:")
    assert not Corpus.all_objects.exists()

    page.fill("input[name=name]", "Three files")
    page.set_input_files(
        "input[name=file]",
        [
            _file("notes.jsonl", b'{"title": "Lists", "text": "A list is mutable."}\n'),
            _file("essay.txt", b"An essay, one document."),
            _file("letter.txt", b"A letter, another document."),
        ],
    )
    screenshot(page, "corpus-multi-file-upload")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_load_state()
    corpus = Corpus.objects.get(name="Three files")
    assert page.url.endswith(corpus.get_absolute_url())
    assert "Added 3 documents from notes.jsonl, essay.txt, letter.txt" in page.content()
    assert list(corpus.documents.order_by("position").values_list("title", flat=True)) == [
        "Lists",
        "essay.txt",
        "letter.txt",
    ]

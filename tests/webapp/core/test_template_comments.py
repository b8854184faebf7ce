"""Django's `{# ... #}` comment ends at the end of its line: a multi-line one is printed on the page as text."""
from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def test_no_template_opens_a_one_line_comment_it_does_not_close_on_that_line():
    unclosed = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert not unclosed, f"multi-line {{# #}} comments show on the page; use {{% comment %}}: {unclosed}"



@pytest.mark.django_db
def test_the_almost_form_shows_no_template_source(researcher_client):
    page = researcher_client.get("/almost/new/").content.decode()
    assert "{#" not in page and "{%" not in page

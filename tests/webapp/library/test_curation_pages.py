"""The artifact's row viewer: filters in the page, htmx row actions and edits in place, save as new."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from webapp.library.models import Artifact, CurationDraft
from webapp.runs.services import artifact_register

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def artifact(tmp_path, settings) -> Artifact:
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    rows = [{"prompt": f"Question {index}", "response": f"Answer {index}", "tags": ["a", "b"]} for index in range(30)]
    rows[4]["response"] = "<script>alert('x')</script> [go](javascript:alert(1)) **fine**"
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return artifact_register(run=None, name="answers", kind=Artifact.Kind.SFT, jsonl_path=path)


def test_the_viewer_renders_responses_safely_and_needs_no_inline_script(researcher_client, artifact):
    response = researcher_client.get(f"/runs/artifacts/{artifact.pk}/")
    page = response.content.decode()
    assert response.status_code == 200 and "page 1 of 2" in page
    assert "&lt;script&gt;alert" in page and "<strong>fine</strong>" in page
    assert "[go](javascript:alert(1))" in page and 'href="javascript:' not in page  # the link stays text
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag or f'nonce="{nonce}"' in tag, tag
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", page)


def test_search_and_filters_narrow_the_rows_and_the_pager_keeps_them(researcher_client, artifact):
    page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/", {"q": "question 2"}).content.decode()
    assert "12 of 30 rows match" in page  # every word anywhere: rows 2, 12 and 20 to 29
    page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/", {"column": "prompt", "value": "question 7"})
    assert "1 of 30 rows match" in page.content.decode()
    page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/", {"q": "answer", "page": "1"}).content.decode()
    assert "?q=answer&amp;page=2" in page
    refused = researcher_client.get(f"/runs/artifacts/{artifact.pk}/", {"column": "nope"}).content.decode()
    assert "“nope” is not a column of this artifact" in refused


def test_row_actions_swap_the_row_in_place_and_survive_a_reload(researcher_client, researcher, artifact):
    base = f"/runs/artifacts/{artifact.pk}"
    dropped = researcher_client.post(f"{base}/rows/2/drop/", headers=HTMX)
    assert dropped.status_code == 200 and dropped["HX-Trigger"] == "curation-changed"
    row = dropped.content.decode()
    assert row.lstrip().startswith('<tr id="row-2"') and "is-dropped" in row and ">Restore<" in row
    form = researcher_client.get(f"{base}/rows/3/edit/", headers=HTMX).content.decode()
    assert '<textarea name="response"' in form and "Answer 3</textarea>" in form and 'name="tags"' not in form
    edited = researcher_client.post(f"{base}/rows/3/edit/", {"response": "A *new* answer"}, headers=HTMX)
    assert "<em>new</em>" in edited.content.decode() and "cell-edited" in edited.content.decode()

    page = researcher_client.get(f"{base}/").content.decode()  # a reload
    assert "is-dropped" in page and "<em>new</em>" in page
    assert re.search(r'data-count="dropped">1<.*data-count="edited">1<', page, re.DOTALL)
    counts = researcher_client.get(f"{base}/curation/", headers=HTMX).content.decode()
    assert 'data-count="dropped">1<' in counts
    assert CurationDraft.objects.get(user=researcher).edited_values == {"3": {"response": "A *new* answer"}}


def test_save_as_new_redirects_to_the_new_artifact_which_shows_its_lineage(researcher_client, artifact):
    base = f"/runs/artifacts/{artifact.pk}"
    researcher_client.post(f"{base}/rows/0/drop/", headers=HTMX)
    refused = researcher_client.post(f"{base}/curation/save/", {"name": "answers"}, follow=True).content.decode()
    assert "A dataset named “answers” already exists" in refused
    response = researcher_client.post(f"{base}/curation/save/", {"name": "answers v2"})
    child = Artifact.objects.get(name="answers v2")
    assert response.status_code == 302 and response["Location"] == child.get_absolute_url()
    page = researcher_client.get(child.get_absolute_url()).content.decode()
    assert (
        'id="artifact-lineage"' in page
        and f'href="{artifact.get_absolute_url()}"' in page
        and "1 of 30 rows dropped" in page
    )
    assert "answers v2</a> (29 rows)" in researcher_client.get(f"{base}/").content.decode()
    assert Path(child.jsonl_path).read_text().count("\n") == 29


def test_discarding_the_draft_forgets_it(researcher_client, artifact):
    base = f"/runs/artifacts/{artifact.pk}"
    researcher_client.post(f"{base}/rows/1/flag/", headers=HTMX)
    assert CurationDraft.objects.count() == 1
    researcher_client.post(f"{base}/curation/discard/")
    assert CurationDraft.objects.count() == 0


def test_an_artifact_whose_file_is_gone_says_so_instead_of_failing(researcher_client, researcher, artifact):
    from webapp.library import curation

    curation.curation_row_mark(artifact=artifact, user=researcher, row_index=0, action="drop")
    Path(artifact.jsonl_path).unlink()
    page = researcher_client.get(f"/runs/artifacts/{artifact.pk}/").content.decode()
    assert "The rows of this artifact cannot be read" in page and "answers.jsonl: cannot open the file" in page
    refused = researcher_client.post(f"/runs/artifacts/{artifact.pk}/curation/save/", {"name": "v2"}, follow=True)
    assert "The rows of “answers” cannot be read" in refused.content.decode()
    assert not Artifact.objects.filter(name="v2").exists()

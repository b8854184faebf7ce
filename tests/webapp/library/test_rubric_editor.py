"""The library's rubric form uses ALMoST's structured rubric editor: rows of model, shots and
demonstrations, moved by buttons, saved as named configurations best first, opened again for editing."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from webapp.library import services
from webapp.library.models import FewShotSet, Rubric
from webapp.registry.models import ModelEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def choices() -> dict[str, object]:
    return {
        "large": ModelEntry.objects.create(name="Large model", path="/m/large", parameter_count=1_700_000_000),
        "small": ModelEntry.objects.create(name="Small model", path="/m/small", parameter_count=135_000_000),
        "hhh": FewShotSet.objects.create(
            name="HHH demonstration prompt", kind=FewShotSet.Kind.DEMONSTRATION, example_count=3
        ),
    }


def _rows(*rows: tuple[int, int, int | str]) -> dict[str, str]:
    data = {"rubric-TOTAL_FORMS": str(len(rows)), "rubric-INITIAL_FORMS": "0"}
    for index, (model, shots, demonstrations) in enumerate(rows):
        data |= {
            f"rubric-{index}-model": str(model),
            f"rubric-{index}-shots": str(shots),
            f"rubric-{index}-demonstration_set": str(demonstrations),
        }
    return data


def _page(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.content.decode())


def test_the_new_rubric_page_shows_the_structured_editor_not_json(researcher_client: Client, choices):
    page = _page(researcher_client.get(reverse("library:rubric-create")))
    assert 'name="configurations"' not in page
    assert 'name="rubric-TOTAL_FORMS"' in page and 'name="rubric-0-model"' in page
    for button in ('value="add"', 'value="sort"', 'value="down-0"', 'value="remove-0"'):
        assert button in page
    assert '<ol class="rubric">' in page  # the ALMoST editor's own partial


def test_editor_buttons_redraw_the_rows_and_save_stores_named_configurations(researcher_client: Client, choices):
    large, small, hhh = choices["large"], choices["small"], choices["hhh"]
    details = {"name": "Helpfulness", "criteria": "Helpful first.", "guidelines": ""}
    rows = _rows((small.pk, 0, ""), (large.pk, 3, hhh.pk))
    redrawn = researcher_client.post(reverse("library:rubric-create"), {**details, **rows, "action": "sort"})
    assert redrawn.status_code == 200 and not Rubric.objects.exists()
    editor = redrawn.context["editor"]
    assert [form.initial["model"] for form in editor.forms] == [str(large.pk), str(small.pk)]

    response = researcher_client.post(
        reverse("library:rubric-create"),
        {**details, **_rows((large.pk, 3, hhh.pk), (small.pk, 0, "")), "action": "save"},
    )
    rubric = Rubric.objects.get(name="Helpfulness")
    assert response.status_code == 302
    assert rubric.configurations == [
        {
            "name": "large-model-hhh-3shot",
            "model": "Large model",
            "model_id": large.pk,
            "shots": 3,
            "demonstration_set": "HHH demonstration prompt",
            "demonstration_set_id": hhh.pk,
        },
        {"name": "small-model-none-0shot", "model": "Small model", "model_id": small.pk, "shots": 0},
    ]

    edit_page = researcher_client.get(reverse("library:rubric-edit", args=[rubric.pk]))
    opened = edit_page.context["editor"]
    assert [(form.initial["model"], form.initial["shots"]) for form in opened.forms] == [(large.pk, 3), (small.pk, 0)]
    assert opened.forms[0].initial["demonstration_set"] == hhh.pk
    assert 'id="rubric-unmatched"' not in _page(edit_page)


def test_a_row_the_editor_cannot_accept_is_a_form_error_and_nothing_is_saved(researcher_client: Client, choices):
    response = researcher_client.post(
        reverse("library:rubric-create"),
        {"name": "Bad", **_rows((choices["large"].pk, 99, "")), "action": "save"},
    )
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to" in _page(response)
    assert not Rubric.objects.exists()


def test_hand_written_configurations_are_listed_on_the_edit_page_not_hidden(
    researcher_client: Client, researcher, choices
):
    rubric = services.rubric_create(
        name="Old",
        user=researcher,
        configurations=[{"model": "Large model", "demonstrations": 3}, "tiny model, no prompt"],
    )
    page = _page(researcher_client.get(reverse("library:rubric-edit", args=[rubric.pk])))
    assert 'name="rubric-TOTAL_FORMS" value="1"' in page  # the record naming a registered model, by name
    unmatched = page.split('id="rubric-unmatched"')[1].split("</div>")[0]
    assert '"tiny model, no prompt"' in unmatched
    assert "Saving keeps only the rows below" in unmatched

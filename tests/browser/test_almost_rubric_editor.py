"""The ALMoST rubric editor in Chromium: every control fits its column, and the buttons reorder the rubric."""
from __future__ import annotations

import pytest

from tests.browser.conftest import needs_chromium, screenshot

pytestmark = [needs_chromium, pytest.mark.django_db(transaction=True)]

PASSWORD = "rubric-editor-password"


def _rubric(page) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(model, shots, demonstrations) of every configuration, in rank order, as the page shows them."""
    rows = []
    for index in range(int(page.input_value("input[name=rubric-TOTAL_FORMS]"))):
        model = page.locator(f"select[name=rubric-{index}-model] option:checked").inner_text()
        shots = page.input_value(f"input[name=rubric-{index}-shots]")
        demonstrations = page.locator(f"select[name=rubric-{index}-demonstration_set] option:checked").inner_text()
        rows.append((model, shots, demonstrations))
    return rows


def test_the_rubric_fits_its_column_and_moves_sorts_and_adds_by_button(browser_page, live_server, django_user_model):
    from webapp.library.models import FewShotExample, FewShotSet, SeedPrompt, SeedPromptSet
    from webapp.registry.models import ModelEntry

    seeds = SeedPromptSet.objects.create(name="Demo seed prompts", prompt_count=1)
    SeedPrompt.objects.create(prompt_set=seeds, position=0, text="How do I boil an egg?")
    hhh = FewShotSet.objects.create(name="HHH demonstration prompt", kind=FewShotSet.Kind.DEMONSTRATION, example_count=3)
    for position in range(3):
        FewShotExample.objects.create(few_shot_set=hhh, position=position, context=f"Human: q{position}?\n\nAssistant: a.")
    ModelEntry.objects.create(name="SmolLM2-135M-Instruct (bundled)", source=ModelEntry.Source.LOCAL, path="/m/s",
                              parameter_count=135_000_000)
    django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_load_state()

    page.goto(f"{live_server.url}/almost/new/")
    section = page.locator("#almost-rubric").bounding_box()
    for control in page.locator("#almost-rubric select, #almost-rubric input[type=number]").all():
        box = control.bounding_box()
        assert box["x"] >= section["x"] and box["x"] + box["width"] <= section["x"] + section["width"] + 0.5, (
            f"{control.get_attribute('name')} sticks out of the rubric column"
        )
    # The bundled model's full name is readable in its select (not clipped to a few letters).
    model_select = page.locator("select[name=rubric-0-model]")
    assert model_select.evaluate("e => e.scrollWidth <= e.clientWidth + 24")
    screenshot(page, "almost-rubric-editor")

    page.select_option("select[name=rubric-0-demonstration_set]", label="HHH demonstration prompt")
    page.select_option("select[name=rubric-1-demonstration_set]", label="HHH demonstration prompt")
    assert [row[1] for row in _rubric(page)] == ["3", "1"]
    page.locator("button[value=down-0]").click()
    page.wait_for_load_state()
    assert [row[1] for row in _rubric(page)] == ["1", "3"]
    assert page.locator("button[value=up-0]").is_disabled() and page.locator("button[value=down-1]").is_disabled()
    page.get_by_role("button", name="Order by the rules of thumb").click()
    page.wait_for_load_state()
    assert [row[1:] for row in _rubric(page)] == [("3", "HHH demonstration prompt"), ("1", "HHH demonstration prompt")]
    page.get_by_role("button", name="Add configuration").click()
    page.wait_for_load_state()
    assert len(_rubric(page)) == 3
    page.locator("button[value=remove-2]").click()
    page.wait_for_load_state()
    assert len(_rubric(page)) == 2

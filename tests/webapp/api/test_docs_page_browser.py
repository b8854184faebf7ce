"""The interactive docs page in Chromium: Swagger UI from this site's static files runs under the
Content-Security-Policy (no violation, nothing from a CDN), and "Try it out" answers from the session."""

from __future__ import annotations

import pytest

from tests.browser.conftest import needs_chromium

PASSWORD = "a-researcher-password-42"

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


def test_the_docs_page_renders_and_tries_an_operation_under_the_policy(
    transactional_db, live_server, browser_page, django_user_model
):
    page = browser_page
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    outside: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(live_server.url) else outside.append(request.url))
    django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    page.goto(f"{live_server.url}/accounts/login/?next=/api/v1/docs")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/api/v1/docs")
    page.get_by_text("Refinery API").first.wait_for()
    page.locator("#operations-runs-run_kinds").click()
    page.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda response: response.url.endswith("/api/v1/run-kinds")) as answered:
        page.get_by_role("button", name="Execute").click()
    assert answered.value.status == 200 and "generate" in answered.value.text()
    assert violations == [] and outside == []

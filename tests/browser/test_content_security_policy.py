"""Pages work in Chromium under the Content-Security-Policy: no violation reported, htmx polling and the
status filter (a select that submits its form, once an inline handler) still do their job."""

from __future__ import annotations

import pytest

from tests.browser.conftest import needs_chromium

PASSWORD = "a-researcher-password-42"

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


def test_pages_run_under_the_policy_without_violations(transactional_db, live_server, browser_page, django_user_model):
    from webapp.runs.models import PipelineRun

    page = browser_page
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    user = django_user_model.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    PipelineRun.objects.create(
        kind="generate", name="failed one", created_by=user, status=PipelineRun.Status.FAILED
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/dashboard/")
    # The dashboard's htmx partial polls every 2 s: wait for one swap to have happened.
    with page.expect_response(
        lambda response: response.url.endswith("/dashboard/") and response.request.headers.get("hx-request") == "true"
    ):
        pass
    page.goto(f"{live_server.url}/runs/")
    page.select_option("select[name=status]", "failed")
    page.wait_for_url("**/runs/?status=failed")
    for path in ("/models/", "/training/new/", "/library/", "/evaluations/"):
        page.goto(live_server.url + path)
    assert violations == []

"""Personal API tokens: stored hashed, shown once, revocable, each user's own; and what a token reaches."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from webapp.api.models import ApiToken
from webapp.api.tokens import token_authenticate, token_create

pytestmark = pytest.mark.django_db


def test_only_the_secrets_hash_is_stored_and_it_authenticates(researcher):
    created = token_create(user=researcher, name="sweep")
    assert created.secret.startswith("rfy_") and len(created.secret) > 40
    stored = ApiToken.objects.get()
    assert stored.secret_hash == hashlib.sha256(created.secret.encode()).hexdigest()
    assert created.secret not in {stored.name, stored.prefix, stored.secret_hash}
    assert created.secret.startswith(stored.prefix)
    assert token_authenticate(created.secret).user == researcher
    assert token_authenticate(created.secret + "x") is None


def test_the_page_shows_a_new_secret_once_and_revokes(client: Client, annotator):
    client.force_login(annotator)
    created = client.post("/account/tokens/", {"name": "labelling script"})
    assert created.status_code == 200
    token = ApiToken.objects.get(user=annotator)
    page = created.content.decode()
    secret = page.split('<pre id="new-token-secret">')[1].split("</pre>")[0]
    assert hashlib.sha256(secret.encode()).hexdigest() == token.secret_hash
    assert secret not in client.get("/account/tokens/").content.decode()
    assert Client(headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/assignments").status_code == 200
    client.post(f"/account/tokens/{token.pk}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert Client(headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/assignments").status_code == 401


def test_a_user_cannot_revoke_anothers_token(client: Client, researcher, make_user):
    theirs = token_create(user=make_user("researcher"), name="theirs").token
    client.force_login(researcher)
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_a_nameless_token_is_refused_on_the_page(client: Client, researcher):
    client.force_login(researcher)
    assert client.post("/account/tokens/", {"name": ""}).status_code == 400
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    "header", ["Bearer rfy_not-a-real-token", "Bearer ", "Basic dXNlcjpwdw==", "rfy_without_scheme", "Bearer nope"]
)
def test_bad_credentials_get_401_json_never_the_login_redirect(header):
    response = Client(headers={"Authorization": header}).get("/api/v1/runs")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"]


def test_a_token_of_a_deactivated_user_authenticates_nothing(researcher_api):
    researcher_api.user.is_active = False
    researcher_api.user.save()
    assert researcher_api.get("/api/v1/runs").status_code == 401


def test_a_session_works_for_reads_and_needs_csrf_for_writes(researcher):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(researcher)
    assert browser.get("/api/v1/runs").status_code == 200
    refused = browser.post("/api/v1/rubrics", {"name": "r"}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    browser.get("/account/tokens/")
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post(
        "/api/v1/rubrics", {"name": "r"}, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert accepted.status_code == 201, accepted.content


def test_a_token_needs_no_csrf_and_never_starts_a_session(researcher_api):
    response = researcher_api.post("/api/v1/rubrics", {"name": "r"}, content_type="application/json")
    assert response.status_code == 201 and "sessionid" not in response.cookies


def test_the_docs_page_is_behind_login_and_loads_swagger_from_this_site(client: Client, researcher):
    assert client.get("/api/v1/docs").status_code == 302
    client.force_login(researcher)
    page = client.get("/api/v1/docs")
    html = page.content.decode()
    assert page.status_code == 200 and "/static/ninja/swagger-ui-bundle.js" in html
    assert 'data-api-csrf="true"' in html  # "Try it out" sends the session's CSRF token
    assert "cdn" not in html.lower() and "script-src 'self'" in page["Content-Security-Policy"]
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "Refinery API"


def test_a_token_opens_no_page_outside_the_api_not_even_an_admins(admin_api):
    for path in ("/runs/", "/admin/", "/account/tokens/"):
        response = admin_api.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path

"""Every operation of the JSON API, called by every role and credential: who gets through, who is refused.

The operations are read from the live OpenAPI schema, so a new endpoint is covered the day it is
added. Ids in paths are sample values of objects that do not exist: being let through shows as a
404 (or a 422 for a body the sample does not fill), being refused as 401/403, never a 500.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from webapp.api.api import api
from webapp.api.tokens import token_create, token_revoke

pytestmark = pytest.mark.django_db

SCHEMA = api.get_openapi_schema(path_params={})
OPERATIONS = sorted(
    (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
    for path, methods in SCHEMA["paths"].items()
    for method in methods
    if method in ("get", "post", "put", "patch", "delete")
)
EVERY_ROLE = {("GET", "/api/v1/assignments")}
"""What an annotator's token reaches: their own assignments (and the schema, below)."""
LET_THROUGH = {200, 201, 404, 409, 413, 415, 422}


def _call(client: Client, method: str, path: str):
    if method == "GET":
        return client.get(path)
    return client.post(path, {}, content_type="application/json")


def _bearer(user) -> Client:
    return Client(headers={"Authorization": f"Bearer {token_create(user=user, name='matrix').secret}"})


def test_the_matrix_covers_every_area():
    paths = {path for _, path in OPERATIONS}
    for expected in ("/api/v1/runs", "/api/v1/artifacts/1/download", "/api/v1/corpora", "/api/v1/models/1/lineage",
                     "/api/v1/campaigns/1/statistics", "/api/v1/evaluations", "/api/v1/leaderboard"):  # fmt: skip
        assert expected in paths


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_without_credentials_or_with_a_revoked_token_every_operation_is_401_json(method, path, make_user):
    assert _call(Client(), method, path).status_code == 401
    revoked = token_create(user=make_user("researcher"), name="old")
    token_revoke(token=revoked.token)
    response = _call(Client(headers={"Authorization": f"Bearer {revoked.secret}"}), method, path)
    assert response.status_code == 401 and response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_an_annotators_token_reaches_only_its_own_assignments(method, path, make_user):
    response = _call(_bearer(make_user("annotator")), method, path)
    if (method, path) in EVERY_ROLE:
        assert response.status_code == 200
    else:
        assert response.status_code == 403, f"{method} {path} gave {response.status_code} to an annotator"
        assert response.json()["detail"] == "Your role does not give access to this endpoint."


@pytest.mark.parametrize("role", ["researcher", "admin"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_researchers_and_admins_are_let_through_every_operation(method, path, role, make_user):
    response = _call(_bearer(make_user(role)), method, path)
    assert response.status_code in LET_THROUGH, f"{method} {path} gave {response.status_code} to a {role}"


def test_operation_ids_are_unique_view_names():
    ids = [operation["operationId"] for methods in SCHEMA["paths"].values() for operation in methods.values()]
    assert len(ids) == len(set(ids)) and "run_create" in ids and "artifact_download" in ids


@pytest.mark.parametrize("role", ["researcher", "annotator", "admin"])
def test_every_role_may_read_the_schema_but_not_anonymously(role, make_user):
    assert _bearer(make_user(role)).get("/api/v1/openapi.json").status_code == 200
    assert Client().get("/api/v1/openapi.json").status_code == 401

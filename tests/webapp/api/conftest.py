"""API test fixtures: a personal token per role, and a client that sends it."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.browser.conftest import browser_page  # noqa: F401 - the docs page's browser test
from tests.webapp.annotation.conftest import make_campaign, rubric, write_artifact  # noqa: F401 - the campaign fixtures
from webapp.api.tokens import token_create, token_revoke


class TokenClient(Client):
    """A test client that sends `Authorization: Bearer <secret>` on every request (no session)."""

    def __init__(self, secret: str) -> None:
        super().__init__(headers={"Authorization": f"Bearer {secret}"})
        self.secret = secret


@pytest.fixture
def token_client(make_user):
    """`token_client(role)`: a client holding a fresh token of a new user with that role."""

    def make(role: str = "researcher", **extra) -> TokenClient:
        user = make_user(role, **extra)
        client = TokenClient(token_create(user=user, name=f"{role} script").secret)
        client.user = user
        return client

    return make


@pytest.fixture
def researcher_api(token_client):
    return token_client("researcher")


@pytest.fixture
def annotator_api(token_client):
    return token_client("annotator")


@pytest.fixture
def admin_api(token_client):
    return token_client("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def revoked_api(make_user):
    created = token_create(user=make_user("researcher"), name="old laptop")
    token_revoke(token=created.token)
    return TokenClient(created.secret)

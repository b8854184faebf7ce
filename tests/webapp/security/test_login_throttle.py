"""Login throttling: 5 failed logins for one username from one address within the window refuse further attempts."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"  # the make_user fixture's


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def _login(username: str, password: str, address: str = "203.0.113.7") -> tuple[Client, object]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return client, response


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_failures_refuse_even_the_right_password_with_a_clear_message(researcher):
    for _ in range(5):
        client, response = _login(researcher.username, "wrong")
        assert response.status_code == 200 and not _logged_in(client)
        assert "Please enter a correct username and password" in response.content.decode()
    client, response = _login(researcher.username, PASSWORD)
    page = response.content.decode()
    assert not _logged_in(client)
    assert "Too many failed logins for this username from your address" in page and "Wait 5 minutes" in page


def test_the_count_is_per_username_and_address(researcher, make_user):
    other = make_user("researcher")
    for _ in range(5):
        _login(researcher.username, "wrong")
    assert _logged_in(_login(researcher.username, PASSWORD, address="198.51.100.2")[0])  # another address
    assert _logged_in(_login(other.username, PASSWORD)[0])  # another username, same address
    assert not _logged_in(_login(researcher.username.upper(), PASSWORD)[0])  # the same username, other case


def test_a_successful_login_clears_the_count(researcher):
    for _ in range(4):
        _login(researcher.username, "wrong")
    assert _logged_in(_login(researcher.username, PASSWORD)[0])
    for _ in range(4):
        _login(researcher.username, "wrong")
    assert _logged_in(_login(researcher.username, PASSWORD)[0])


def test_attempts_are_allowed_again_once_the_window_has_passed(researcher, settings):
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 1
    for _ in range(5):
        _login(researcher.username, "wrong")
    assert not _logged_in(_login(researcher.username, PASSWORD)[0])
    time.sleep(1.2)
    assert _logged_in(_login(researcher.username, PASSWORD)[0])


def test_behind_a_proxy_the_configured_header_gives_the_address(researcher, settings):
    settings.LOGIN_THROTTLE_CLIENT_IP_HEADER = "HTTP_X_REAL_IP"
    for _ in range(5):
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_REAL_IP="203.0.113.9").post(
            reverse("login"), {"username": researcher.username, "password": "wrong"}
        )
    proxied_other = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_REAL_IP="203.0.113.10")
    proxied_other.post(reverse("login"), {"username": researcher.username, "password": PASSWORD})
    assert _logged_in(proxied_other)

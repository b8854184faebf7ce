"""A Content-Security-Policy header on every response, and pages that need no inline script to work under it."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

INLINE_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def _directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


def _inline_script_problems(html: str, nonce: str) -> list[str]:
    problems = [match.group(0)[:120] for match in INLINE_HANDLER.finditer(html)]
    for match in SCRIPT_TAG.finditer(html):
        attributes = match.group(1)
        if "src=" not in attributes and f'nonce="{nonce}"' not in attributes:
            problems.append(match.group(0))
    return problems


def test_every_kind_of_response_carries_the_policy(client, researcher):
    anonymous = [client.get(reverse("login")), client.get("/runs/"), client.get("/healthz")]
    client.force_login(researcher)
    signed_in = [client.get("/"), client.get("/runs/"), client.get("/no-such-page/"), client.get("/admin/")]
    for response in anonymous + signed_in:
        directives = _directives(response)
        assert directives["default-src"] == "default-src 'self'", response
        assert "'unsafe-inline'" not in directives["script-src"] and "'unsafe-eval'" not in directives["script-src"]
        assert (
            directives["object-src"] == "object-src 'none'"
            and directives["frame-ancestors"] == "frame-ancestors 'none'"
        )


def test_the_nonce_is_fresh_per_response_and_given_to_the_htmx_script(client, researcher):
    client.force_login(researcher)
    first, second = client.get("/dashboard/"), client.get("/dashboard/")
    nonces = [
        re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1) for response in (first, second)
    ]
    assert nonces[0] != nonces[1]
    assert f'nonce="{nonces[0]}"' in first.content.decode()  # {% htmx_script %} got it


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/",
        "/library/",
        "/models/",
        "/runs/",
        "/generate/new/",
        "/training/new/",
        "/augcon/new/",
        "/spin/new/",
        "/almost/new/",
        "/aft/new/",
        "/evaluations/",
        "/annotation/",
        "/annotation/new/",
        "/library/datasets/",
    ],
)
def test_pages_have_no_inline_script_or_event_handler_the_policy_would_block(client, admin_user, path):
    client.force_login(admin_user)
    response = client.get(path)
    assert response.status_code == 200, path
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert _inline_script_problems(response.content.decode(), nonce) == []


def test_the_login_page_works_under_the_policy(client):
    response = client.get(reverse("login"))
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert _inline_script_problems(response.content.decode(), nonce) == []


def test_only_django_rqs_admin_pages_may_run_their_inline_scripts(admin_user):
    client = Client()
    client.force_login(admin_user)
    directives = _directives(client.get("/admin/rq/"))
    assert directives["script-src"] == "script-src 'self' 'unsafe-inline'"

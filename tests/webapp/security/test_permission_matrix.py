"""Every URL in the project, opened by every role: who gets the page, who is refused.

The URL list is discovered from the resolver, so a new page is covered the day it is added; a
page missing from `PUBLIC`/`OPEN_TO_ALL` is treated as research-only.
"""
from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"login", "healthz"}
OPEN_TO_ALL = {"home", "logout", "api-tokens", "api-token-revoke", "api-v1:openapi-view"}
ADMIN_PREFIXES = ("admin/",)
# The JSON API's operations answer 401/403 JSON instead of the login redirect and the error page: they
# have their own matrix (test_api_permission_matrix.py). Its docs page is a page, and stays here.
API_PREFIX = "api/v1/"
API_PAGES = {"api-v1:openapi-view"}
# Pages that answer a researcher's GET with 404 in the empty test database, and only those: each names
# an object in its URL (the sample path asks for id 1, or run 1's AugCon document "jsonl") that does
# not exist. A 404 from any other page is a view that fails for everyone, not "not refused".
MISSING_OBJECT_PAGES = {
    "aft:prompt",
    "annotation:detail",
    "annotation:export",
    "annotation:item",
    "annotation:workspace",
    "augcon:tree",
    "evaluation:detail",
    "evaluation:export",
    "library:corpus-detail",
    "library:document-detail",
    "library:document-download",
    "library:fewshot-detail",
    "library:rubric-detail",
    "library:rubric-edit",
    "library:seedset-detail",
    "registry:detail",
    "runs:artifact",
    "runs:artifact-curation",
    "runs:artifact-download",
    "runs:artifact-row",
    "runs:artifact-row-edit",
    "runs:detail",
    "webhooks:detail",
}


def _walk(patterns, prefix="", namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else (pattern.namespace or namespace)
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
            yield prefix + str(pattern.pattern), name


def _concrete(route: str) -> str | None:
    """Turn a route into a path a client can request; regex routes get sample values."""
    path = re.sub(r"<int:[^>]+>", "1", route)
    path = re.sub(r"<(str|slug):[^>]+>", "jsonl", path)
    path = re.sub(r"<path:[^>]+>", "x", path)
    if path.startswith("^") or "(?P" in path or "<" in path:
        return None
    return "/" + path.lstrip("^").rstrip("$")


ROUTES = {name: route for route, name in _walk(get_resolver().url_patterns)}
ALL_URLS = sorted(
    {
        (path, name)
        for route, name in _walk(get_resolver().url_patterns)
        if (path := _concrete(route)) and (not route.startswith(API_PREFIX) or name in API_PAGES)
    }
)
APP_URLS = [(path, name) for path, name in ALL_URLS if not path.lstrip("/").startswith(ADMIN_PREFIXES)]
ADMIN_URLS = [(path, name) for path, name in ALL_URLS if path.lstrip("/").startswith(ADMIN_PREFIXES)]


def test_the_matrix_covers_the_main_pages():
    names = {name for _, name in ALL_URLS}
    for expected in ("dashboard", "runs:list", "runs:detail", "generate:new", "registry:list", "library:index"):
        assert expected in names


def test_every_page_allowed_a_404_still_exists_and_names_an_object_in_its_url():
    for name in sorted(MISSING_OBJECT_PAGES):
        assert name in ROUTES, f"{name} is no longer a URL: remove it from MISSING_OBJECT_PAGES"
        assert "<" in ROUTES[name], f"{name} ({ROUTES[name]}) names no object, so it has no reason to 404"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), [u for u in ALL_URLS if u[1] not in PUBLIC])
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_users_are_sent_to_login_from_every_page(client: Client, path: str, name: str, method: str):
    response = getattr(client, method)(path)
    assert response.status_code == 302, f"{method.upper()} {path} ({name}) gave {response.status_code}"
    assert "/login/" in response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), [u for u in APP_URLS if u[1] not in PUBLIC | OPEN_TO_ALL])
@pytest.mark.parametrize("method", ["get", "post"])
def test_annotators_are_refused_every_research_page(client: Client, annotator, path: str, name: str, method: str):
    client.force_login(annotator)
    response = getattr(client, method)(path)
    assert response.status_code in (403, 405), f"{method.upper()} {path} ({name}) gave {response.status_code}"
    if response.status_code == 405:
        # Wrong method is refused before the role check; the allowed method must still be 403.
        other = "post" if method == "get" else "get"
        assert getattr(client, other)(path).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), ADMIN_URLS)
@pytest.mark.parametrize("role", ["researcher", "annotator"])
def test_only_admins_reach_admin_and_queue_pages(client: Client, make_user, path: str, name: str, role: str):
    client.force_login(make_user(role))
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 403, f"{method.upper()} {path} ({name}) gave {response.status_code} to a {role}"


@pytest.mark.django_db
def test_admins_reach_the_admin_and_the_queue_pages(client: Client, admin_user):
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/rq/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "name"), [u for u in APP_URLS if u[1] not in PUBLIC | {"logout"}])
def test_researchers_are_not_refused_research_pages(client: Client, researcher, path: str, name: str):
    client.force_login(researcher)
    response = client.get(path)
    # POST-only views answer 405, which is no refusal; a 404 is expected only where the object is missing.
    allowed = (200, 302, 404, 405) if name in MISSING_OBJECT_PAGES else (200, 302, 405)
    assert response.status_code in allowed, f"GET {path} ({name}) gave {response.status_code}"


@pytest.mark.django_db
def test_annotator_home_shows_no_research_navigation(client: Client, annotator):
    client.force_login(annotator)
    page = client.get("/").content.decode()
    assert "annotator" in page
    for link in ("/library/", "/runs/", "/models/", "/dashboard/"):
        assert f'href="{link}"' not in page


@pytest.mark.django_db
def test_htmx_requests_from_anonymous_users_get_a_login_redirect_header(client: Client):
    response = client.get("/runs/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response["HX-Redirect"].startswith("/accounts/login/")

"""Error pages: a refused, missing or failed page is a styled page of the site with a way home."""

from __future__ import annotations

import html

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db


def test_an_annotator_refused_a_research_page_sees_a_styled_page_with_a_link_home(client: Client, annotator):
    client.force_login(annotator)
    response = client.get(reverse("library:corpus-list"))
    page = html.unescape(response.content.decode())
    assert response.status_code == 403
    assert 'class="topbar"' in page  # the site's own header, so the page extends base.html
    assert "This page is not open to you" in page
    assert "Your role does not give access to this page." in page
    assert f'href="{reverse("home")}">Back to your home page</a>' in page
    assert "<h1>403 Forbidden</h1>" not in page


def test_a_missing_page_is_a_styled_404_with_a_link_home(researcher_client: Client):
    response = researcher_client.get("/no-such-page-anywhere/")
    page = response.content.decode()
    assert response.status_code == 404
    assert 'class="topbar"' in page
    assert "Nothing here" in page
    assert ">Back to your home page</a>" in page


def test_the_500_page_renders_without_a_request_context():
    response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in page
    assert 'href="/">Back to your home page</a>' in page

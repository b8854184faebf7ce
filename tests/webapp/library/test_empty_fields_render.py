"""Pages of sets and models with no description (nor author, nor a figure) show nothing or a dash, never "None"."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from webapp.library.models import Corpus, FewShotSet, Rubric, SeedPromptSet
from webapp.registry.models import ModelEntry

pytestmark = pytest.mark.django_db

NONE_SHOWN = re.compile(r">\s*None\s*<")


def _assert_no_none(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 200, url
    page = response.content.decode()
    shown = NONE_SHOWN.search(page)
    assert shown is None, f"{url} shows None: …{page[max(0, shown.start() - 200) : shown.end() + 50]}…"


def test_library_lists_and_details_with_empty_descriptions_never_show_none(researcher_client: Client):
    corpus = Corpus.objects.create(name="Bare corpus", description="", source="")
    seed_set = SeedPromptSet.objects.create(name="Bare prompts", description="")
    few_shot_set = FewShotSet.objects.create(name="Bare shots", description="")
    rubric = Rubric.objects.create(name="Bare rubric")
    model = ModelEntry.objects.create(name="bare-model", notes="", metrics={"eval_loss": None})
    urls = [
        reverse("library:index"),
        reverse("library:corpus-list"),
        reverse("library:corpus-detail", args=[corpus.pk]),
        reverse("library:seedset-list"),
        reverse("library:seedset-detail", args=[seed_set.pk]),
        reverse("library:fewshot-list"),
        reverse("library:fewshot-detail", args=[few_shot_set.pk]),
        reverse("library:dataset-list"),
        reverse("library:rubric-list"),
        reverse("library:rubric-detail", args=[rubric.pk]),
        reverse("registry:list"),
        model.get_absolute_url(),
    ]
    for url in urls:
        _assert_no_none(researcher_client, url)

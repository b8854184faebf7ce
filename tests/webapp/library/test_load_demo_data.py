"""`load_demo_data`: the demo library and users, loaded once however many times it runs."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from webapp.accounts.models import User
from webapp.library.models import Corpus, Document, FewShotSet, Rubric, SeedPromptSet

pytestmark = pytest.mark.django_db

PASSWORD_VARIABLES = ("REFINERY_ADMIN_PASSWORD", "REFINERY_RESEARCHER_PASSWORD", "REFINERY_ANNOTATOR_PASSWORD")


@pytest.fixture
def var_dir(settings, tmp_path, monkeypatch):
    """Password files go to a scratch var/ directory, and no password comes from the environment."""
    settings.VAR_DIR = tmp_path
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    for variable in PASSWORD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("load_demo_data", *args, stdout=out)
    return out.getvalue()


def test_running_twice_loads_everything_once_and_prints_the_same_logins(var_dir):
    first = _run()
    second = _run()

    corpus = Corpus.objects.get()
    assert (corpus.name, corpus.document_count, Document.objects.count()) == ("Python language reference", 79, 79)
    assert set(corpus.documents.values_list("title", flat=True)) >= {"assert", "lambda", "with"}
    prompt_set = SeedPromptSet.objects.get(name="Demo seed prompts")
    assert prompt_set.instruction and prompt_set.prompt_count >= 25
    kinds = dict(FewShotSet.objects.values_list("name", "kind"))
    assert kinds == {
        "Python reference QA": "qa",
        "HHH demonstration prompt": "demonstration",
        "Faithful demonstration prompt": "demonstration",
    }
    assert FewShotSet.objects.get(name="Python reference QA").example_count == 8
    assert all(few_shot_set.preamble for few_shot_set in FewShotSet.objects.filter(kind="demonstration"))
    from webapp.library.models import Artifact

    dataset = Artifact.objects.get()
    assert (dataset.name, dataset.kind, dataset.row_count, dataset.run) == ("Python reference QA (SFT)", "sft", 8, None)
    rubric = Rubric.objects.get()
    assert (
        rubric.name == "Helpful, honest, harmless" and rubric.criteria and rubric.guidelines and rubric.configurations
    )

    logins = re.findall(r"^(Admin|Researcher|Annotator) login: (\S+) / (\S+)$", first, re.MULTILINE)
    assert [(label, username) for label, username, _ in logins] == [
        ("Admin", "admin"),
        ("Researcher", "researcher"),
        ("Annotator", "annotator"),
    ]
    assert re.findall(r"^(?:Admin|Researcher|Annotator) login: .*$", second, re.MULTILINE) == re.findall(
        r"^(?:Admin|Researcher|Annotator) login: .*$", first, re.MULTILINE
    )
    for _, username, password in logins:
        assert authenticate(username=username, password=password) is not None
        assert (var_dir / f"{username}-password.txt").read_text().strip() == password
    assert User.objects.get(username="admin").effective_role == "admin"
    assert User.objects.get(username="admin").is_staff
    assert User.objects.get(username="annotator").role == "annotator"


def test_admin_username_and_password_from_the_environment(var_dir, monkeypatch):
    monkeypatch.setenv("REFINERY_ADMIN_PASSWORD", "from-the-environment-1")
    output = _run("--admin-username", "boss")
    assert "Admin login: boss / from-the-environment-1" in output
    assert authenticate(username="boss", password="from-the-environment-1").is_superuser
    assert not (var_dir / "admin-password.txt").exists()

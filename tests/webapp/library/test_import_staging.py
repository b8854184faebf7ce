"""Imports commit in batches into a staged set (issue 17, item 2): other writers never wait for a whole
upload, a staged set is invisible everywhere until it is complete, and a refused import leaves no rows."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from webapp.library import selectors, services
from webapp.library.models import Corpus, Document, ImportStatus, SeedPrompt, SeedPromptSet
from webapp.library.parsers.reading import ImportProblem

# Other connections must see (or not see) what the import committed: no test-wide transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def _big_jsonl(path: Path, documents: int, *, bad_last_line: bool = False) -> Path:
    paragraph = "Each line is one document of about a kilobyte, so a megabyte holds many batches. " * 12
    with open(path, "w") as out:
        for index in range(documents):
            out.write(json.dumps({"title": f"document {index}", "text": f"{index} {paragraph}"}) + "\n")
        if bad_last_line:
            out.write('{"title": "no text"}\n')
    return path


def _corpus_of(tmp_path: Path, user, name: str, documents: int) -> Corpus:  # type: ignore[no-untyped-def]
    """A corpus `name` imported whole from a file of `documents` documents (one.jsonl)."""
    return services.corpus_import(
        name=name,
        uploaded_file_path=_big_jsonl(tmp_path / "one.jsonl", documents),
        original_name="one.jsonl",
        user=user,
    ).corpus


class PausedImport:
    """A corpus import (or append) in another thread (its own database connection) that stops at its first
    progress report, after 1 MiB of the file has been read, until the test lets it go on."""

    def __init__(self, importer=None, **arguments) -> None:
        self.importer = importer or services.corpus_import
        self.arguments = arguments
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _progress(self, done: int, total: int) -> None:
        if not self.paused.is_set():
            self.paused.set()
            self.resume.wait(timeout=60)

    def _run(self) -> None:
        try:
            self.result = self.importer(progress=self._progress, **self.arguments)
        except BaseException as error:  # handed to the test thread
            self.error = error
        finally:
            self.paused.set()
            connection.close()

    def __enter__(self) -> PausedImport:
        self.thread.start()
        assert self.paused.wait(timeout=60), "the import never reported progress"
        return self

    def __exit__(self, *exc_info) -> None:
        self.resume.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the import did not finish"


def test_other_writes_proceed_while_a_large_import_is_under_way_and_its_corpus_stays_hidden(
    tmp_path, researcher, client: Client
):
    path = _big_jsonl(tmp_path / "big.jsonl", 3000)
    client.force_login(researcher)
    with PausedImport(
        name="Big", uploaded_file_path=path, original_name="big.jsonl", user=researcher, batch_size=100
    ) as running:
        assert running.error is None
        # Batches are committed as the import goes (visible to this other connection) ...
        committed = Document.objects.count()
        assert committed >= 500, f"only {committed} documents committed after 1 MiB of the file"
        # ... but the corpus they belong to is staged: no page, selector or form sees it.
        staged = Corpus.all_objects.get(name="Big")
        assert staged.status == ImportStatus.STAGING
        assert not Corpus.objects.filter(name="Big").exists()
        assert "Big" not in [corpus.name for corpus in selectors.corpus_list()]
        overview = selectors.library_overview()
        assert (overview.corpus_count, overview.document_count) == (0, 0)
        assert "Big" not in client.get(reverse("library:corpus-list")).content.decode()
        assert client.get(reverse("library:corpus-detail", args=[staged.pk])).status_code == 404
        staged_document = Document.objects.filter(corpus=staged).first()
        assert client.get(reverse("library:document-detail", args=[staged_document.pk])).status_code == 404
        from webapp.augcon.forms import AugConRunForm

        assert staged.pk not in AugConRunForm().fields["corpus"].queryset.values_list("pk", flat=True)
        # Another writer does not wait for the import (on SQLite it would wait for the whole upload).
        started = time.monotonic()
        services.rubric_create(name="Saved meanwhile", user=researcher, criteria="Be right.")
        elapsed = time.monotonic() - started
        assert elapsed < 3, f"a rubric save waited {elapsed:.1f} s for the import"
    assert running.error is None, running.error
    corpus = Corpus.objects.get(name="Big")
    assert corpus.status == ImportStatus.READY
    assert corpus.document_count == 3000 == Document.objects.filter(corpus=corpus).count()
    assert running.result.corpus == corpus
    assert "Big" in client.get(reverse("library:corpus-list")).content.decode()


def test_a_refused_import_removes_every_committed_batch(tmp_path, researcher):
    path = _big_jsonl(tmp_path / "bad.jsonl", 2500, bad_last_line=True)
    with PausedImport(
        name="Bad", uploaded_file_path=path, original_name="bad.jsonl", user=researcher, batch_size=100
    ) as running:
        assert Document.objects.count() > 0  # batches were committed before the bad line was reached
    assert isinstance(running.error, ImportProblem)
    assert str(running.error) == 'bad.jsonl, line 2501: missing the "text" or "article" field'
    assert (Corpus.all_objects.count(), Document.objects.count()) == (0, 0)


def test_a_refused_append_leaves_the_corpus_and_the_table_as_they_were(tmp_path, researcher):
    corpus = _corpus_of(tmp_path, researcher, "Kept", 5)
    with pytest.raises(ImportProblem):
        services.corpus_append(
            corpus=corpus,
            uploaded_file_path=_big_jsonl(tmp_path / "two.jsonl", 300, bad_last_line=True),
            original_name="two.jsonl",
            batch_size=50,
        )
    corpus.refresh_from_db()
    assert (corpus.document_count, Document.objects.count(), Corpus.all_objects.count()) == (5, 5, 1)


def test_an_append_is_invisible_until_complete_then_lands_after_the_last_document(tmp_path, researcher):
    corpus = _corpus_of(tmp_path, researcher, "Growing", 3)
    result = services.corpus_append(
        corpus=corpus,
        uploaded_file_path=_big_jsonl(tmp_path / "two.jsonl", 250),
        original_name="two.jsonl",
        batch_size=40,
    )
    assert result.added_documents == 250
    corpus.refresh_from_db()
    assert corpus.document_count == 253
    assert list(corpus.documents.order_by("position").values_list("position", flat=True)) == list(range(253))
    assert Corpus.all_objects.count() == 1  # the staging corpus is gone


def test_an_append_under_way_adds_nothing_visible_to_the_corpus(tmp_path, researcher, client: Client):
    corpus = _corpus_of(tmp_path, researcher, "Growing", 3)
    client.force_login(researcher)
    with PausedImport(
        services.corpus_append,
        corpus=corpus,
        uploaded_file_path=_big_jsonl(tmp_path / "two.jsonl", 3000),
        original_name="two.jsonl",
        batch_size=100,
    ) as running:
        assert Document.objects.count() > 500  # the appended batches are committed ...
        corpus.refresh_from_db()
        assert corpus.document_count == 3 == corpus.documents.count()  # ... but not in the corpus yet
        assert selectors.document_search(corpus=corpus).count() == 3
        assert [corpus.name for corpus in selectors.corpus_list()] == ["Growing"]
        page = client.get(reverse("library:corpus-detail", args=[corpus.pk])).content.decode()
        assert "document 3 " not in page and "two.jsonl" not in page
    assert running.error is None, running.error
    corpus.refresh_from_db()
    assert corpus.document_count == 3003 == corpus.documents.count()
    assert Corpus.all_objects.count() == 1


def test_a_staged_set_of_a_dead_import_is_removed_by_the_next_import(tmp_path, researcher):
    dead = SeedPromptSet.all_objects.create(name="Seeds", status=ImportStatus.STAGING)
    SeedPrompt.objects.create(prompt_set=dead, position=0, text="left behind")
    SeedPromptSet.all_objects.filter(pk=dead.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    path = tmp_path / "seeds.txt"
    path.write_text("What is a list?\n")
    prompt_set = services.seed_prompt_set_import(
        name="Seeds", uploaded_file_path=path, original_name="seeds.txt", user=researcher
    )
    assert list(prompt_set.prompts.values_list("text", flat=True)) == ["What is a list?"]
    assert SeedPrompt.objects.count() == 1
    assert not SeedPromptSet.all_objects.filter(pk=dead.pk).exists()


def test_a_live_staged_import_holds_its_name(tmp_path, researcher):
    from django.core.exceptions import ValidationError

    SeedPromptSet.all_objects.create(name="Busy", status=ImportStatus.STAGING)
    path = tmp_path / "seeds.txt"
    path.write_text("What is a list?\n")
    with pytest.raises(ValidationError) as raised:
        services.seed_prompt_set_import(
            name="Busy", uploaded_file_path=path, original_name="seeds.txt", user=researcher
        )
    assert "is in progress" in raised.value.message_dict["name"][0]


def test_the_admin_does_not_list_staged_sets_or_their_rows(admin_user, client: Client):
    staged = Corpus.all_objects.create(name="Half-imported corpus", status=ImportStatus.STAGING)
    Document.objects.create(corpus=staged, position=0, title="staged-document-title", text="x")
    staged_seeds = SeedPromptSet.all_objects.create(name="Half-imported seeds", status=ImportStatus.STAGING)
    SeedPrompt.objects.create(prompt_set=staged_seeds, position=0, text="staged-prompt-text")
    client.force_login(admin_user)
    pages = {
        name: client.get(reverse(f"admin:library_{name}_changelist")).content.decode()
        for name in ("corpus", "document", "seedpromptset", "seedprompt")
    }
    assert "Half-imported corpus" not in pages["corpus"]
    assert "staged-document-title" not in pages["document"]
    assert "Half-imported seeds" not in pages["seedpromptset"]
    assert "staged-prompt-text" not in pages["seedprompt"]

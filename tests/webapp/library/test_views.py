"""Library pages through the test client: uploads (multipart), the 400 page, search, rubrics, who may open what."""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from webapp.library import services
from webapp.library.models import Corpus, Document, FewShotSet, Rubric, SeedPrompt, SeedPromptSet

pytestmark = pytest.mark.django_db

CORPUS_JSONL = b'{"title": "Lists", "text": "A list is a mutable sequence."}\n{"title": "Tuples", "text": "A tuple is immutable."}\n{"title": "Dicts", "text": "A dict maps keys to values."}\n'


def _page(response) -> str:
    return html.unescape(response.content.decode())


def _counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Corpus, Document, SeedPromptSet, SeedPrompt, FewShotSet))


@pytest.fixture
def corpus(researcher, tmp_path) -> Corpus:
    path = tmp_path / "c.jsonl"
    rows = [
        {
            "title": f"Topic {index}",
            "text": f"Body of topic {index}" + (" mentions decorators" if index % 10 == 0 else ""),
        }
        for index in range(60)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return services.corpus_import(
        name="Topics", uploaded_file_path=path, original_name="c.jsonl", user=researcher
    ).corpus


def test_corpus_upload_page_has_the_form(researcher_client: Client):
    page = _page(researcher_client.get(reverse("library:corpus-upload")))
    assert reverse("library:corpus-upload") == "/library/corpora/upload/"
    for field in (
        'name="name"',
        'name="description"',
        'name="file"',
        'enctype="multipart/form-data"',
        ">Upload</button>",
    ):
        assert field in page


def test_corpus_upload_redirects_to_the_corpus_with_its_document_count(researcher_client: Client, researcher):
    upload = SimpleUploadedFile("notes.jsonl", CORPUS_JSONL, content_type="application/octet-stream")
    response = researcher_client.post(
        reverse("library:corpus-upload"), {"name": "Notes", "description": "Three notes", "file": upload}
    )
    corpus = Corpus.objects.get(name="Notes")
    assert response.status_code == 302
    assert response["Location"] == reverse("library:corpus-detail", args=[corpus.pk])
    page = _page(researcher_client.get(response["Location"]))
    assert "3 documents" in page and "Lists" in page and "Three notes" in page
    assert (corpus.created_by, corpus.source) == (researcher, "notes.jsonl")


def test_large_upload_goes_through_a_file_on_disk(researcher_client: Client, settings):
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE, Django spools to a temporary file that the importer reads by path.
    line = json.dumps({"text": "x" * 1000}) + "\n"
    content = (line * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE // len(line) + 10)).encode()
    upload = SimpleUploadedFile("big.jsonl", content)
    response = researcher_client.post(reverse("library:corpus-upload"), {"name": "Big", "file": upload})
    assert response.status_code == 302
    assert Corpus.objects.get(name="Big").document_count == content.count(b"\n")


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        (
            "corpus.jsonl",
            b'{"text": "a"}\n{"text": "b"}\n["c"]\n',
            'corpus.jsonl, line 3: expected a JSON object with a "text" or "article" field, found a list',
        ),
        (
            "corpus.jsonl",
            b'{"text": "a"}\n{"text": "\xff"}\n',
            "corpus.jsonl, line 2: invalid UTF-8 (byte 0xff at column 11)",
        ),
        ("corpus.jsonl", b"", "corpus.jsonl: the file is empty: no documents found"),
        ("evil.zip", None, 'evil.zip: entry "../evil.txt" escapes the archive with ".."'),
        ("corpus.xlsx", b"x", 'corpus.xlsx: unsupported file type ".xlsx"'),
    ],
)
def test_bad_corpus_upload_shows_the_problem_with_400_and_changes_nothing(
    researcher_client: Client, file_name, content, message
):
    from .conftest import zip_bytes

    if content is None:
        content = zip_bytes([("ok.txt", "fine"), ("../evil.txt", "x")])
    before = _counts()
    response = researcher_client.post(
        reverse("library:corpus-upload"), {"name": "Bad", "file": SimpleUploadedFile(file_name, content)}
    )
    assert response.status_code == 400
    page = _page(response)
    assert message in page
    assert 'value="Bad"' in page, "the form keeps what was typed"
    assert _counts() == before


@pytest.mark.parametrize(
    ("content", "refusal"),
    [
        # 2.8 MB: over the limit plus the multipart allowance, refused from its declared length.
        (b'{"text": "x"}\n' * 200_000, "over the limit of 1,000 bytes"),
        # 1,400 bytes: within the multipart allowance, over the file limit: cut off while streaming.
        (b'{"text": "x"}\n' * 100, "big.jsonl: the file is over the limit of 1,000 bytes"),
    ],
    ids=["declared-length", "while-streaming"],
)
def test_upload_over_the_limit_is_refused(researcher_client: Client, settings, content: bytes, refusal: str):
    settings.LIBRARY_MAX_UPLOAD_BYTES = 1000
    response = researcher_client.post(
        reverse("library:corpus-upload"), {"name": "Big", "file": SimpleUploadedFile("big.jsonl", content)}
    )
    assert response.status_code == 400
    assert refusal in _page(response)
    assert not Corpus.objects.exists()


def test_duplicate_corpus_name_is_a_form_error(researcher_client: Client, corpus):
    response = researcher_client.post(
        reverse("library:corpus-upload"), {"name": "Topics", "file": SimpleUploadedFile("n.jsonl", CORPUS_JSONL)}
    )
    assert response.status_code == 400
    assert "Corpus with this Name already exists." in _page(response)
    assert Corpus.objects.count() == 1


def test_upload_without_csrf_token_is_refused(researcher):
    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    response = client.post(
        reverse("library:corpus-upload"), {"name": "Notes", "file": SimpleUploadedFile("n.jsonl", CORPUS_JSONL)}
    )
    assert response.status_code == 403
    assert not Corpus.objects.exists()


def test_append_adds_documents_and_a_bad_append_changes_nothing(researcher_client: Client, corpus):
    url = reverse("library:corpus-append", args=[corpus.pk])
    response = researcher_client.post(url, {"file": SimpleUploadedFile("more.jsonl", CORPUS_JSONL)})
    assert response.status_code == 302
    corpus.refresh_from_db()
    assert corpus.document_count == 63
    response = researcher_client.post(
        url, {"file": SimpleUploadedFile("worse.jsonl", b'{"text": "ok"}\n{"txt": "typo"}\n')}
    )
    assert response.status_code == 400
    assert 'worse.jsonl, line 2: missing the "text" or "article" field' in _page(response)
    corpus.refresh_from_db()
    assert corpus.document_count == 63 == corpus.documents.count()


def test_corpus_detail_paginates_and_searches(researcher_client: Client, corpus):
    url = reverse("library:corpus-detail", args=[corpus.pk])
    page = _page(researcher_client.get(url))
    assert "60 documents" in page and "Topic 0" in page and "Topic 24" in page and "Topic 25" not in page
    page = _page(researcher_client.get(url, {"q": "DECORATORS"}))
    assert "6 matches" in page and "Topic 10" in page and "Topic 11" not in page and "<html" in page


def test_search_with_htmx_returns_only_the_rows(researcher_client: Client, corpus):
    response = researcher_client.get(
        reverse("library:corpus-detail", args=[corpus.pk]), {"q": "topic 5"}, headers={"HX-Request": "true"}
    )
    page = _page(response)
    assert response.status_code == 200
    assert "<html" not in page and "<form" not in page
    assert page.lstrip().startswith("<tr")
    titles = [f"Topic {index}" for index in range(60) if str(index).startswith("5")]
    for title in titles:
        assert f">{title}</a>" in page
    assert ">Topic 4</a>" not in page
    assert f"{len(titles)} matches" in page


def test_document_detail_shows_the_text_and_where_it_came_from(researcher_client: Client, corpus):
    document = corpus.documents.get(position=10)
    page = _page(researcher_client.get(reverse("library:document-detail", args=[document.pk])))
    assert "Body of topic 10 mentions decorators" in page and "c.jsonl, line 11" in page


def test_seed_prompt_upload_and_detail(researcher_client: Client):
    upload = SimpleUploadedFile("seeds.txt", b"### Instruction: Be kind.\nWhat is Python?\nWhat is Rust?\n")
    response = researcher_client.post(
        reverse("library:seedset-upload"), {"name": "Seeds", "description": "", "file": upload}
    )
    prompt_set = SeedPromptSet.objects.get(name="Seeds")
    assert response["Location"] == reverse("library:seedset-detail", args=[prompt_set.pk])
    page = _page(researcher_client.get(response["Location"]))
    assert "2 prompts" in page and "Be kind." in page and "What is Rust?" in page


def test_bad_seed_prompt_upload_is_400(researcher_client: Client):
    response = researcher_client.post(
        reverse("library:seedset-upload"), {"name": "Seeds", "file": SimpleUploadedFile("seeds.txt", b"")}
    )
    assert response.status_code == 400
    assert "seeds.txt: the file is empty: no prompts found" in _page(response)
    assert not SeedPromptSet.objects.exists()


def test_few_shot_upload_of_each_kind(researcher_client: Client):
    qa = SimpleUploadedFile(
        "qa.jsonl", json.dumps({"context": "C", "question": "Why?", "answer": "Because."}).encode() + b"\n"
    )
    response = researcher_client.post(reverse("library:fewshot-upload"), {"name": "QA", "kind": "qa", "file": qa})
    assert response.status_code == 302
    assert "Because." in _page(researcher_client.get(response["Location"]))
    demo = SimpleUploadedFile("demo.txt", b"Preamble text.\n\n-----\n\nHuman: Hi\n\nAssistant: Hello\n")
    response = researcher_client.post(
        reverse("library:fewshot-upload"), {"name": "Demo", "kind": "demonstration", "file": demo}
    )
    assert response.status_code == 302
    page = _page(researcher_client.get(response["Location"]))
    assert "Preamble text." in page and "Assistant: Hello" in page and "1 example" in page


def test_bad_few_shot_upload_is_400(researcher_client: Client):
    qa = SimpleUploadedFile("qa.jsonl", b'{"context": "C", "question": "Q", "answer": ""}\n')
    response = researcher_client.post(reverse("library:fewshot-upload"), {"name": "QA", "kind": "qa", "file": qa})
    assert response.status_code == 400
    assert 'qa.jsonl, line 1: the "answer" field is empty' in _page(response)
    assert not FewShotSet.objects.exists()


def test_rubric_create_and_edit_keep_name_and_texts(researcher_client: Client):
    # The configurations have their own tests (tests/webapp/library/test_rubric_editor.py).
    empty_editor = {"rubric-TOTAL_FORMS": "0", "rubric-INITIAL_FORMS": "0"}
    response = researcher_client.post(
        reverse("library:rubric-create"),
        {"name": "Judge", "criteria": "Correct first.", "guidelines": "Read both.", **empty_editor},
    )
    rubric = Rubric.objects.get(name="Judge")
    assert response["Location"] == reverse("library:rubric-detail", args=[rubric.pk])
    page = _page(researcher_client.get(response["Location"]))
    assert "Correct first." in page
    edit_url = reverse("library:rubric-edit", args=[rubric.pk])
    assert "Correct first." in _page(researcher_client.get(edit_url))
    response = researcher_client.post(edit_url, {"name": "", "criteria": "Kind too.", **empty_editor})
    assert response.status_code == 400
    response = researcher_client.post(edit_url, {"name": "Judge v2", "criteria": "Kind too.", **empty_editor})
    assert response.status_code == 302
    rubric.refresh_from_db()
    assert (rubric.name, rubric.criteria, rubric.configurations) == ("Judge v2", "Kind too.", [])


def test_index_and_lists_show_counts(researcher_client: Client, corpus):
    page = _page(researcher_client.get(reverse("library:index")))
    assert "1 corpus, 60 documents" in page
    for name in ("library:corpus-list", "library:seedset-list", "library:fewshot-list", "library:rubric-list"):
        assert researcher_client.get(reverse(name)).status_code == 200
    assert "Topics" in _page(researcher_client.get(reverse("library:corpus-list")))


def _library_urls(corpus: Corpus) -> list[str]:
    from webapp.library.urls import urlpatterns

    document = corpus.documents.first()
    rubric = Rubric.objects.create(name="R")
    seed_set = SeedPromptSet.objects.create(name="S")
    few_shot_set = FewShotSet.objects.create(name="F")
    ids = {
        "corpus": corpus.pk,
        "document": document.pk,
        "rubric": rubric.pk,
        "seedset": seed_set.pk,
        "fewshot": few_shot_set.pk,
    }
    urls = []
    for pattern in urlpatterns:
        kind = pattern.name.split("-")[0]
        args = [ids[kind]] if "<int:pk>" in str(pattern.pattern) else []
        urls.append(reverse(f"library:{pattern.name}", args=args))
    return urls


@pytest.mark.parametrize("method", ["get", "post"])
def test_annotators_are_refused_every_library_page(client: Client, annotator, corpus, method):
    client.force_login(annotator)
    urls = _library_urls(corpus)
    before = _counts()
    other = "post" if method == "get" else "get"
    for url in urls:
        response = getattr(client, method)(url)
        assert response.status_code in (403, 405), f"{method.upper()} {url} gave {response.status_code}"
        if response.status_code == 405:
            # Wrong method is refused before the role check; the right one must still be refused.
            assert getattr(client, other)(url).status_code == 403, f"{other.upper()} {url}"
    assert _counts() == before


def test_anonymous_users_are_sent_to_login_from_every_library_page(client: Client, corpus):
    for url in _library_urls(corpus):
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], f"{method.upper()} {url}"

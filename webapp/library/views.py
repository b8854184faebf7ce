"""Library pages: the overview, corpora (upload, append, browse, search), seed prompts, few-shot sets, rubrics.

Upload views are wrapped in `uploads.size_limited_uploads` and hand a POST to `uploads.upload_import`
(size limits while receiving, the form, the file handed on as a path on disk); the import itself is
a service. A document page shows an excerpt and links to the whole text as a download, so no page
ever holds a whole (possibly huge) document.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.almost import rubric_editor
from webapp.almost.forms import RUBRIC_PREFIX, ConfigurationFormSet, rubric_rows
from webapp.core.forms import add_validation_error

from . import importers, selectors, services
from .forms import (
    CORPUS_UPLOAD_MAX_FILES,
    CorpusAppendForm,
    CorpusUploadForm,
    DatasetUploadForm,
    FewShotSetUploadForm,
    RubricDetailsForm,
    SeedPromptSetUploadForm,
)
from .models import Corpus, FewShotSet, Rubric, SeedPromptSet
from .parsers.reading import SourceFile
from .uploads import Importer, library_upload_limit, size_limited_uploads, upload_import

DOCUMENTS_PER_PAGE = 25
ROWS_PER_PAGE = 100


def _upload(
    request: HttpRequest, *, form_class: type[forms.Form], template: str, context: dict[str, Any], importer: Importer
) -> HttpResponse:
    """GET shows the form; POST imports the file or re-renders the form with the problem and HTTP 400."""
    context = {
        **context,
        "max_upload_bytes": settings.LIBRARY_MAX_UPLOAD_BYTES,
        "max_document_bytes": settings.LIBRARY_MAX_DOCUMENT_BYTES,
    }
    if request.method == "GET":
        return render(request, template, {**context, "form": form_class()})
    outcome = upload_import(request, form_class=form_class, importer=importer)
    if outcome.saved is not None:
        messages.success(request, outcome.message)
        return redirect(outcome.saved.get_absolute_url())
    return render(request, template, {**context, "form": outcome.form, "problem": outcome.problem}, status=400)


# ---------------------------------------------------------------- overview


@require_GET
@research_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "library/index.html", {"overview": selectors.library_overview()})


# ---------------------------------------------------------------- corpora


@require_GET
@research_required
def corpus_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/corpus_list.html", {"corpora": selectors.corpus_list()})


@require_http_methods(["GET", "POST"])
@research_required
@size_limited_uploads(library_upload_limit, max_files=CORPUS_UPLOAD_MAX_FILES)
def corpus_upload(request: HttpRequest) -> HttpResponse:
    return _upload(
        request,
        form_class=CorpusUploadForm,
        template="library/corpus_upload.html",
        context={},
        importer=importers.import_corpus,
    )


@require_GET
@research_required
def corpus_detail(request: HttpRequest, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus.objects, pk=pk)
    return _render_corpus_detail(request, corpus, CorpusAppendForm())


def _render_corpus_detail(
    request: HttpRequest, corpus: Corpus, append_form: forms.Form, problem: str | None = None, status: int = 200
) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = Paginator(selectors.document_search(corpus=corpus, query=query), DOCUMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "corpus": corpus,
        "page": page,
        "query": query,
        "append_form": append_form,
        "problem": problem,
        "max_upload_bytes": settings.LIBRARY_MAX_UPLOAD_BYTES,
        "max_document_bytes": settings.LIBRARY_MAX_DOCUMENT_BYTES,
    }
    if request.htmx and request.method == "GET":
        return render(request, "library/partials/_document_rows.html", context)
    return render(request, "library/corpus_detail.html", context, status=status)


@require_POST
@research_required
@size_limited_uploads(library_upload_limit)
def corpus_append(request: HttpRequest, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus.objects, pk=pk)

    def importer(data: dict[str, Any], files: list[SourceFile], user: Any) -> tuple[Model, str]:
        [upload] = files  # the form takes one file
        path, original_name = upload.path, upload.original_name
        result = services.corpus_append(
            corpus=corpus, uploaded_file_path=path, original_name=original_name, drop_duplicates=data["drop_duplicates"]
        )
        return corpus, result.summary(original_name)

    outcome = upload_import(request, form_class=CorpusAppendForm, importer=importer)
    if outcome.saved is not None:
        messages.success(request, outcome.message)
        return redirect(corpus)
    return _render_corpus_detail(request, corpus, outcome.form, outcome.problem, status=400)


@require_GET
@research_required
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(selectors.document_pages(), pk=pk)
    context = {
        "document": document,
        "excerpt_truncated": document.character_count > len(document.excerpt),
        "previous": selectors.document_neighbour(document, before=True),
        "next": selectors.document_neighbour(document, before=False),
    }
    return render(request, "library/document_detail.html", context)


@require_GET
@research_required
def document_download(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The whole text as a UTF-8 .txt download, read from the database a slice at a time."""
    document = get_object_or_404(selectors.document_pages(), pk=pk)

    def chunks() -> Iterator[bytes]:
        for piece in selectors.document_text_pieces(document):
            yield piece.encode("utf-8")

    response = StreamingHttpResponse(chunks(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="document-{document.pk}.txt"'
    return response


# ---------------------------------------------------------------- seed prompt sets


@require_GET
@research_required
def seedset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/seedset_list.html", {"prompt_sets": selectors.seed_prompt_set_list()})


@require_http_methods(["GET", "POST"])
@research_required
@size_limited_uploads(library_upload_limit)
def seedset_upload(request: HttpRequest) -> HttpResponse:
    return _upload(
        request,
        form_class=SeedPromptSetUploadForm,
        template="library/seedset_upload.html",
        context={},
        importer=importers.import_seed_prompt_set,
    )


@require_GET
@research_required
def seedset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    prompt_set = get_object_or_404(SeedPromptSet.objects, pk=pk)
    page = Paginator(prompt_set.prompts.order_by("position"), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "library/seedset_detail.html", {"prompt_set": prompt_set, "page": page})


# ---------------------------------------------------------------- few-shot sets


@require_GET
@research_required
def fewshot_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/fewshot_list.html", {"few_shot_sets": selectors.few_shot_set_list()})


@require_http_methods(["GET", "POST"])
@research_required
@size_limited_uploads(library_upload_limit)
def fewshot_upload(request: HttpRequest) -> HttpResponse:
    return _upload(
        request,
        form_class=FewShotSetUploadForm,
        template="library/fewshot_upload.html",
        context={},
        importer=importers.import_few_shot_set,
    )


@require_GET
@research_required
def fewshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    few_shot_set = get_object_or_404(FewShotSet.objects, pk=pk)
    page = Paginator(few_shot_set.examples.order_by("position"), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "library/fewshot_detail.html", {"few_shot_set": few_shot_set, "page": page})


# ---------------------------------------------------------------- rubrics


@require_GET
@research_required
def rubric_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/rubric_list.html", {"rubrics": selectors.rubric_list()})


@require_http_methods(["GET", "POST"])
@research_required
def rubric_create(request: HttpRequest) -> HttpResponse:
    return _rubric_page(request, None)


@require_GET
@research_required
def rubric_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "library/rubric_detail.html", {"rubric": get_object_or_404(Rubric, pk=pk)})


@require_http_methods(["GET", "POST"])
@research_required
def rubric_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _rubric_page(request, get_object_or_404(Rubric, pk=pk))


def _rubric_page(request: HttpRequest, rubric: Rubric | None) -> HttpResponse:
    """The rubric form with ALMoST's structured rubric editor (one editor for both): an editor button
    (add, sort, up/down/remove) redraws the configurations; any other POST saves the rubric."""
    context: dict[str, Any] = {"rubric": rubric, "show_errors": True, "unmatched": []}
    action = request.POST.get("action", "save")
    if request.method == "GET":
        if rubric is None:
            form, rows = RubricDetailsForm(), rubric_editor.initial_rubric()
        else:
            form = RubricDetailsForm(
                initial={"name": rubric.name, "criteria": rubric.criteria, "guidelines": rubric.guidelines}
            )
            rows, context["unmatched"] = rubric_editor.rows_from_records(rubric.configurations)
        editor = ConfigurationFormSet(prefix=RUBRIC_PREFIX, initial=rows)
        return render(request, "library/rubric_form.html", {**context, "form": form, "editor": editor})
    form = RubricDetailsForm(request.POST)
    if rubric_editor.is_editor_action(action):
        editor = ConfigurationFormSet(
            prefix=RUBRIC_PREFIX, initial=rubric_editor.rubric_edit(action, rubric_rows(request.POST))
        )
        context["show_errors"] = False  # a redraw keeps what was typed but judges nothing yet
        return render(request, "library/rubric_form.html", {**context, "form": form, "editor": editor})
    editor = ConfigurationFormSet(request.POST, prefix=RUBRIC_PREFIX)
    if form.is_valid() and editor.is_valid():
        choices = [entry.choice() for entry in editor.forms if entry.cleaned_data]
        values = {**form.cleaned_data, "configurations": rubric_editor.configuration_records(choices)}
        try:
            if rubric is None:
                rubric = services.rubric_create(user=request.user, **values)
            else:
                services.rubric_update(rubric=rubric, **values)
        except ValidationError as error:
            if rubric is not None:
                rubric.refresh_from_db()
            add_validation_error(form, error)
        else:
            messages.success(request, f"Saved rubric “{rubric}”.")
            return redirect("library:rubric-detail", pk=rubric.pk)
    return render(request, "library/rubric_form.html", {**context, "form": form, "editor": editor}, status=400)


# ---------------------------------------------------------------- training datasets


@require_GET
@research_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/dataset_list.html", {"datasets": selectors.dataset_list()})


@require_http_methods(["GET", "POST"])
@research_required
@size_limited_uploads(library_upload_limit)
def dataset_upload(request: HttpRequest) -> HttpResponse:
    return _upload(
        request,
        form_class=DatasetUploadForm,
        template="library/dataset_upload.html",
        context={},
        importer=importers.import_dataset,
    )

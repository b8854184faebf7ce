"""Library pages: the overview, corpora (upload, append, browse, search), seed prompts, few-shot sets, rubrics.

Uploads never sit in memory: the declared request size is checked before the body is read, a file
part is cut off as soon as it passes the limit, and the file reaches the import service as a path
on disk. Upload views are CSRF-exempt on the outside only so the size-limit handler can be installed
before anything reads the body; the CSRF check then runs on the inner view, before any import.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.accounts.permissions import research_required
from webapp.core.forms import add_validation_error

from . import selectors, services
from .forms import (
    CorpusAppendForm,
    CorpusUploadForm,
    DatasetUploadForm,
    FewShotSetUploadForm,
    RubricForm,
    SeedPromptSetUploadForm,
)
from .models import Corpus, Document, FewShotSet, Rubric, SeedPromptSet
from .parsers import ImportProblem

DOCUMENTS_PER_PAGE = 25
ROWS_PER_PAGE = 100
# Multipart boundaries and the small text fields that travel with the file.
UPLOAD_OVERHEAD_BYTES = 1 << 20

Importer = Callable[[dict[str, Any], Path, str, Any], Model]


# ---------------------------------------------------------------- upload plumbing


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops receiving a file part as soon as it passes `max_bytes`, and remembers which file it was."""

    def __init__(self, request: HttpRequest, max_bytes: int) -> None:
        super().__init__(request)
        self.max_bytes = max_bytes
        self.too_large_file: str | None = None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.max_bytes:
            self.too_large_file = self.file_name
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def _too_large(file_name: str, size: int | None = None) -> str:
    limit = settings.LIBRARY_MAX_UPLOAD_BYTES
    size_text = f"is {size:,} bytes, " if size is not None else "is "
    return f"{file_name}: the file {size_text}over the limit of {limit:,} bytes"


def _declared_size_problem(request: HttpRequest) -> str | None:
    """A refusal when the request says, before its body is read, that it is too large."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > settings.LIBRARY_MAX_UPLOAD_BYTES + UPLOAD_OVERHEAD_BYTES:
        return _too_large("The upload", declared)
    return None


@contextmanager
def _upload_on_disk(uploaded: UploadedFile) -> Iterator[Path]:
    """A path to the uploaded file's bytes: Django's own temp file, or one we stream the chunks into."""
    if isinstance(uploaded, TemporaryUploadedFile):
        yield Path(uploaded.temporary_file_path())
        return
    handle, name = tempfile.mkstemp(
        prefix="library-upload-", suffix=Path(uploaded.name or "").suffix, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in uploaded.chunks():
                out.write(chunk)
        yield Path(name)
    finally:
        os.unlink(name)



def _upload(
    request: HttpRequest, *, form_class: type[forms.Form], template: str, context: dict[str, Any], importer: Importer
) -> HttpResponse:
    """GET shows the form; POST imports the file or re-renders the form with the problem and HTTP 400."""
    context = {**context, "max_upload_bytes": settings.LIBRARY_MAX_UPLOAD_BYTES}
    if request.method == "GET":
        return render(request, template, {**context, "form": form_class()})
    declared_problem = _declared_size_problem(request)
    if declared_problem:
        return render(request, template, {**context, "form": form_class(), "problem": declared_problem}, status=400)
    limit_handler = SizeLimitUploadHandler(request, settings.LIBRARY_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, limit_handler)
    return _upload_checked(
        request,
        form_class=form_class,
        template=template,
        context=context,
        importer=importer,
        limit_handler=limit_handler,
    )


@csrf_protect
def _upload_checked(
    request: HttpRequest,
    *,
    form_class: type[forms.Form],
    template: str,
    context: dict[str, Any],
    importer: Importer,
    limit_handler: SizeLimitUploadHandler,
) -> HttpResponse:
    form = form_class(request.POST, request.FILES)
    problem = None
    if limit_handler.too_large_file is not None:
        problem = _too_large(limit_handler.too_large_file)
    elif form.is_valid():
        uploaded = form.cleaned_data["file"]
        if uploaded.size > settings.LIBRARY_MAX_UPLOAD_BYTES:
            problem = _too_large(uploaded.name, uploaded.size)
        else:
            try:
                with _upload_on_disk(uploaded) as path:
                    saved = importer(form.cleaned_data, path, uploaded.name, request.user)
            except ImportProblem as import_problem:
                problem = str(import_problem)
            except ValidationError as error:
                add_validation_error(form, error)
            else:
                messages.success(request, f"Imported {uploaded.name} into “{saved}”.")
                return redirect(saved.get_absolute_url())
    return render(request, template, {**context, "form": form, "problem": problem}, status=400)


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
@csrf_exempt
def corpus_upload(request: HttpRequest) -> HttpResponse:
    def importer(data: dict[str, Any], path: Path, original_name: str, user: Any) -> Corpus:
        return services.corpus_import(
            name=data["name"],
            description=data["description"],
            uploaded_file_path=path,
            original_name=original_name,
            user=user,
        )

    return _upload(
        request, form_class=CorpusUploadForm, template="library/corpus_upload.html", context={}, importer=importer
    )


@require_GET
@research_required
def corpus_detail(request: HttpRequest, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus, pk=pk)
    return _render_corpus_detail(request, corpus, CorpusAppendForm())


def _render_corpus_detail(
    request: HttpRequest, corpus: Corpus, append_form: forms.Form, problem: str | None = None, status: int = 200
) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = Paginator(selectors.document_search(corpus=corpus, query=query), DOCUMENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"corpus": corpus, "page": page, "query": query, "append_form": append_form, "problem": problem}
    if request.htmx and request.method == "GET":
        return render(request, "library/partials/_document_rows.html", context)
    return render(request, "library/corpus_detail.html", context, status=status)


@require_POST
@research_required
@csrf_exempt
def corpus_append(request: HttpRequest, pk: int) -> HttpResponse:
    corpus = get_object_or_404(Corpus, pk=pk)

    def importer(data: dict[str, Any], path: Path, original_name: str, user: Any) -> Corpus:
        return services.corpus_append(corpus=corpus, uploaded_file_path=path, original_name=original_name)

    declared_problem = _declared_size_problem(request)
    if declared_problem:
        return _render_corpus_detail(request, corpus, CorpusAppendForm(), declared_problem, status=400)
    limit_handler = SizeLimitUploadHandler(request, settings.LIBRARY_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, limit_handler)
    return _corpus_append_checked(request, corpus, importer, limit_handler)


@csrf_protect
def _corpus_append_checked(
    request: HttpRequest, corpus: Corpus, importer: Importer, limit_handler: SizeLimitUploadHandler
) -> HttpResponse:
    form = CorpusAppendForm(request.POST, request.FILES)
    problem = None
    if limit_handler.too_large_file is not None:
        problem = _too_large(limit_handler.too_large_file)
    elif form.is_valid():
        uploaded = form.cleaned_data["file"]
        if uploaded.size > settings.LIBRARY_MAX_UPLOAD_BYTES:
            problem = _too_large(uploaded.name, uploaded.size)
        else:
            before = corpus.document_count
            try:
                with _upload_on_disk(uploaded) as path:
                    importer(form.cleaned_data, path, uploaded.name, request.user)
            except ImportProblem as import_problem:
                problem = str(import_problem)
            else:
                corpus.refresh_from_db()
                messages.success(request, f"Added {corpus.document_count - before:,} documents from {uploaded.name}.")
                return redirect("library:corpus-detail", pk=corpus.pk)
    return _render_corpus_detail(request, corpus, form, problem, status=400)


@require_GET
@research_required
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document.objects.select_related("corpus"), pk=pk)
    neighbours = Document.objects.filter(corpus=document.corpus).only("pk", "position")
    context = {
        "document": document,
        "previous": neighbours.filter(position__lt=document.position).order_by("-position").first(),
        "next": neighbours.filter(position__gt=document.position).order_by("position").first(),
    }
    return render(request, "library/document_detail.html", context)


# ---------------------------------------------------------------- seed prompt sets


@require_GET
@research_required
def seedset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/seedset_list.html", {"prompt_sets": selectors.seed_prompt_set_list()})


@require_http_methods(["GET", "POST"])
@research_required
@csrf_exempt
def seedset_upload(request: HttpRequest) -> HttpResponse:
    def importer(data: dict[str, Any], path: Path, original_name: str, user: Any) -> SeedPromptSet:
        return services.seed_prompt_set_import(
            name=data["name"],
            description=data["description"],
            uploaded_file_path=path,
            original_name=original_name,
            user=user,
        )

    return _upload(
        request,
        form_class=SeedPromptSetUploadForm,
        template="library/seedset_upload.html",
        context={},
        importer=importer,
    )


@require_GET
@research_required
def seedset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    prompt_set = get_object_or_404(SeedPromptSet, pk=pk)
    page = Paginator(prompt_set.prompts.order_by("position"), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "library/seedset_detail.html", {"prompt_set": prompt_set, "page": page})


# ---------------------------------------------------------------- few-shot sets


@require_GET
@research_required
def fewshot_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/fewshot_list.html", {"few_shot_sets": selectors.few_shot_set_list()})


@require_http_methods(["GET", "POST"])
@research_required
@csrf_exempt
def fewshot_upload(request: HttpRequest) -> HttpResponse:
    def importer(data: dict[str, Any], path: Path, original_name: str, user: Any) -> FewShotSet:
        return services.few_shot_set_import(
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            uploaded_file_path=path,
            original_name=original_name,
            user=user,
        )

    return _upload(
        request, form_class=FewShotSetUploadForm, template="library/fewshot_upload.html", context={}, importer=importer
    )


@require_GET
@research_required
def fewshot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    few_shot_set = get_object_or_404(FewShotSet, pk=pk)
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
    form = RubricForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            rubric = services.rubric_create(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_validation_error(form, error)
        else:
            messages.success(request, f"Saved rubric “{rubric}”.")
            return redirect("library:rubric-detail", pk=rubric.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "library/rubric_form.html", {"form": form, "rubric": None}, status=status)


@require_GET
@research_required
def rubric_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "library/rubric_detail.html", {"rubric": get_object_or_404(Rubric, pk=pk)})


@require_http_methods(["GET", "POST"])
@research_required
def rubric_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rubric = get_object_or_404(Rubric, pk=pk)
    initial = {
        "name": rubric.name,
        "criteria": rubric.criteria,
        "guidelines": rubric.guidelines,
        "configurations": rubric.configurations,
    }
    form = RubricForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.rubric_update(rubric=rubric, **form.cleaned_data)
        except ValidationError as error:
            rubric.refresh_from_db()
            add_validation_error(form, error)
        else:
            messages.success(request, f"Saved rubric “{rubric}”.")
            return redirect("library:rubric-detail", pk=rubric.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "library/rubric_form.html", {"form": form, "rubric": rubric}, status=status)


# ---------------------------------------------------------------- training datasets


@require_GET
@research_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "library/dataset_list.html", {"datasets": selectors.dataset_list()})


@require_http_methods(["GET", "POST"])
@research_required
@csrf_exempt
def dataset_upload(request: HttpRequest) -> HttpResponse:
    def importer(data: dict[str, Any], path: Path, original_name: str, user: Any) -> Model:
        return services.dataset_import(
            name=data["name"], purpose=data["purpose"], uploaded_file_path=path, original_name=original_name
        )

    return _upload(
        request, form_class=DatasetUploadForm, template="library/dataset_upload.html", context={}, importer=importer
    )

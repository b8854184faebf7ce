"""Upload plumbing for every page that takes a file: size limits while receiving, and a path on disk.

Uploads never sit in memory: the declared request size is checked before the body is read, a file
part is cut off as soon as it passes the limit, and the file reaches the import service as a path
on disk. A view that takes uploads is wrapped in `size_limited_uploads`, which is CSRF-exempt on
the outside only so the size-limit handler can be installed before anything reads the body; the
CSRF check then runs on the inner view, before any import. `upload_import` is the one flow from a
POSTed form to an import (every size check, the form, the files on disk, the import's refusals), so
each library view only says which form, which import, and where to show the result. A form whose
`file` field takes several files (the corpus upload) gets each file held to the same limit.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from webapp.core.forms import add_validation_error

from .parsers.reading import ImportProblem, SourceFile

# Multipart boundaries and the small text fields that travel with the file.
UPLOAD_OVERHEAD_BYTES = 1 << 20


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


class UploadLimit:
    """The limit one page puts on its uploads, and what it found while the request came in."""

    def __init__(self, request: HttpRequest, max_bytes: int, max_files: int = 1) -> None:
        self.max_bytes = max_bytes
        self.declared_problem = declared_size_problem(request, max_bytes, max_files)
        self.handler = SizeLimitUploadHandler(request, max_bytes)
        if self.declared_problem is None:
            request.upload_handlers.insert(0, self.handler)

    def problem(self, uploaded: UploadedFile | None = None) -> str | None:
        """Why the upload is refused for its size, or None: declared, cut off while streaming, or whole."""
        if self.declared_problem is not None:
            return self.declared_problem
        if self.handler.too_large_file is not None:
            return too_large_message(self.handler.too_large_file, self.max_bytes)
        if uploaded is not None and uploaded.size is not None and uploaded.size > self.max_bytes:
            return too_large_message(uploaded.name or "The upload", self.max_bytes, uploaded.size)
        return None


def too_large_message(file_name: str, limit: int, size: int | None = None) -> str:
    size_text = f"is {size:,} bytes, " if size is not None else "is "
    return f"{file_name}: the file {size_text}over the limit of {limit:,} bytes"


def declared_size_problem(request: HttpRequest, max_bytes: int, max_files: int = 1) -> str | None:
    """A refusal when the request says, before its body is read, that it is too large for
    `max_files` files of at most `max_bytes` each."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if declared > max_bytes * max_files + UPLOAD_OVERHEAD_BYTES:
        if max_files == 1:
            return too_large_message("The upload", max_bytes, declared)
        return f"The upload is {declared:,} bytes, over the limit of {max_bytes:,} bytes for each of at most {max_files} files"
    return None


@contextmanager
def upload_on_disk(uploaded: UploadedFile) -> Iterator[Path]:
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


def size_limited_uploads(
    max_bytes: Callable[[], int], *, max_files: int = 1
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a view that takes files: on POST, `request.upload_limit` (an UploadLimit) is installed
    before the body is read, then CSRF is checked. `max_bytes` (per file) is called per request so
    tests and operators can change the setting at run time; `max_files` is how many files the page's
    form takes at most, so the request as a whole may be that many times larger.

    When the declared size is already over the limit the body is never read:
    `request.upload_limit.declared_problem` is set and `request.POST` and `request.FILES` are empty.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        protected = csrf_protect(view)

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                request.upload_limit = UploadLimit(request, max_bytes(), max_files)
                if request.upload_limit.declared_problem is not None:
                    # The body is never read: anything that asks for the form (a template tag, the CSRF
                    # check) sees an empty one, and the view only renders the refusal, changing nothing.
                    request._post, request._files = QueryDict(), MultiValueDict()
                    return view(request, *args, **kwargs)
            return protected(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorate


def library_upload_limit() -> int:
    return settings.LIBRARY_MAX_UPLOAD_BYTES


Importer = Callable[[dict[str, Any], list[SourceFile], Any], tuple[Model, str]]
"""(cleaned form data, the files on disk with their original names, user) -> (what was saved, the success
message). The list holds one file unless the form's `file` field takes several."""


@dataclass(frozen=True)
class UploadOutcome:
    """What became of a POSTed upload: `saved` with its success `message`, or else the form (bound,
    with its errors, or blank when the body was never read) and the `problem` to show with it."""

    form: forms.Form
    problem: str | None = None
    saved: Model | None = None
    message: str = ""


def upload_import(request: HttpRequest, *, form_class: type[forms.Form], importer: Importer) -> UploadOutcome:
    """Check the upload's size (declared, streamed, each file whole) and the form, then import the files from disk.

    For a view under `size_limited_uploads`, on POST. A refusal of the import (ImportProblem, or a
    ValidationError put on the form's fields) comes back in the outcome; nothing is saved then.
    """
    limit: UploadLimit = request.upload_limit
    if limit.declared_problem:
        return UploadOutcome(form=form_class(), problem=limit.declared_problem)
    form = form_class(request.POST, request.FILES)
    problem = limit.problem()
    if problem is None and form.is_valid():
        chosen = form.cleaned_data["file"]
        uploaded_files: list[UploadedFile] = chosen if isinstance(chosen, list) else [chosen]
        problem = next(filter(None, (limit.problem(uploaded) for uploaded in uploaded_files)), None)
        if problem is None:
            try:
                with ExitStack() as on_disk:
                    files = [
                        SourceFile(on_disk.enter_context(upload_on_disk(uploaded)), uploaded.name or "")
                        for uploaded in uploaded_files
                    ]
                    saved, message = importer(form.cleaned_data, files, request.user)
            except ImportProblem as import_problem:
                problem = str(import_problem)
            except ValidationError as error:
                add_validation_error(form, error)
            else:
                return UploadOutcome(form=form, saved=saved, message=message)
    return UploadOutcome(form=form, problem=problem)

"""The library: corpora, seed prompt sets, few-shot sets and datasets (list, get, upload), and rubrics.

Uploads are multipart (`webapp/api/uploads.py`) and go through the pages' forms, import services
and size limits; each importer below only maps the form's fields onto the service, as the page's
view does.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema

from webapp.library import importers, selectors, services
from webapp.library.forms import (
    CorpusUploadForm,
    DatasetUploadForm,
    FewShotSetUploadForm,
    RubricForm,
    SeedPromptSetUploadForm,
)
from webapp.library.models import Artifact, Corpus, FewShotSet, Rubric, SeedPromptSet

from ..auth import RESEARCH_AUTH
from ..errors import form_problem, service_problem
from ..schemas import MAX_ID, READ_ERRORS, UPLOAD_ERRORS, WRITE_ERRORS, PageParams, page
from ..throttle import upload_throttle
from ..uploads import form_request_body, import_upload
from .artifacts import ArtifactOut, ArtifactPage, artifact_out

router = Router(tags=["library"], auth=RESEARCH_AUTH)
ObjectId = Path(..., ge=1, le=MAX_ID)


class CorpusOut(Schema):
    id: int
    name: str
    description: str
    source: str
    document_count: int
    character_count: int
    created_at: datetime
    url: str


class SeedPromptSetOut(Schema):
    id: int
    name: str
    description: str
    instruction: str
    prompt_count: int
    created_at: datetime
    url: str


class FewShotSetOut(Schema):
    id: int
    name: str
    kind: str
    description: str
    example_count: int
    created_at: datetime
    url: str


class RubricOut(Schema):
    id: int
    name: str
    criteria: str
    guidelines: str
    configurations: list[Any]
    created_at: datetime
    url: str


class CorpusPage(Schema):
    count: int
    items: list[CorpusOut]


class SeedPromptSetPage(Schema):
    count: int
    items: list[SeedPromptSetOut]


class FewShotSetPage(Schema):
    count: int
    items: list[FewShotSetOut]


class RubricPage(Schema):
    count: int
    items: list[RubricOut]


class RubricIn(Schema):
    name: str
    criteria: str = ""
    guidelines: str = ""
    configurations: list[Any] = Field(default_factory=list, description="Best first, as on the rubric page.")


def _url(request: HttpRequest, saved: Model) -> str:
    return request.build_absolute_uri(saved.get_absolute_url())  # type: ignore[attr-defined]


def corpus_out(request: HttpRequest, corpus: Corpus) -> dict[str, Any]:
    fields = ("name", "description", "source", "document_count", "character_count", "created_at")
    return {"id": corpus.pk, **{name: getattr(corpus, name) for name in fields}, "url": _url(request, corpus)}


def seed_prompt_set_out(request: HttpRequest, prompt_set: SeedPromptSet) -> dict[str, Any]:
    fields = ("name", "description", "instruction", "prompt_count", "created_at")
    return {
        "id": prompt_set.pk,
        **{name: getattr(prompt_set, name) for name in fields},
        "url": _url(request, prompt_set),
    }


def few_shot_set_out(request: HttpRequest, few_shot_set: FewShotSet) -> dict[str, Any]:
    fields = ("name", "kind", "description", "example_count", "created_at")
    return {
        "id": few_shot_set.pk,
        **{name: getattr(few_shot_set, name) for name in fields},
        "url": _url(request, few_shot_set),
    }


def rubric_out(request: HttpRequest, rubric: Rubric) -> dict[str, Any]:
    fields = ("name", "criteria", "guidelines", "configurations", "created_at")
    return {"id": rubric.pk, **{name: getattr(rubric, name) for name in fields}, "url": _url(request, rubric)}


def _page(request: HttpRequest, items: Any, params: PageParams, out: Any) -> dict[str, Any]:
    result = page(items, params)
    return {"count": result["count"], "items": [out(request, item) for item in result["items"]]}


# ---------------------------------------------------------------- corpora


@router.get("/corpora", response={200: CorpusPage, **READ_ERRORS}, summary="Corpora")
def corpus_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    return _page(request, selectors.corpus_list(), params, corpus_out)


@router.get("/corpora/{corpus_id}", response={200: CorpusOut, **READ_ERRORS}, summary="One corpus")
def corpus_get(request: HttpRequest, corpus_id: int = ObjectId) -> dict[str, Any]:
    return corpus_out(request, get_object_or_404(Corpus.objects, pk=corpus_id))


@router.post(
    "/corpora",
    response={201: CorpusOut, **UPLOAD_ERRORS},
    throttle=[upload_throttle()],
    openapi_extra=form_request_body(CorpusUploadForm),
    summary="Upload a corpus (multipart: name, description, file (one or more), drop_duplicates)",
)
def corpus_upload(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    return 201, corpus_out(
        request, import_upload(request, form_class=CorpusUploadForm, importer=importers.import_corpus)
    )


# ---------------------------------------------------------------- seed prompt sets


@router.get("/seed-prompt-sets", response={200: SeedPromptSetPage, **READ_ERRORS}, summary="Seed prompt sets")
def seed_prompt_set_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    return _page(request, selectors.seed_prompt_set_list(), params, seed_prompt_set_out)


@router.get(
    "/seed-prompt-sets/{prompt_set_id}", response={200: SeedPromptSetOut, **READ_ERRORS}, summary="One seed prompt set"
)
def seed_prompt_set_get(request: HttpRequest, prompt_set_id: int = ObjectId) -> dict[str, Any]:
    return seed_prompt_set_out(request, get_object_or_404(SeedPromptSet.objects, pk=prompt_set_id))


@router.post(
    "/seed-prompt-sets",
    response={201: SeedPromptSetOut, **UPLOAD_ERRORS},
    throttle=[upload_throttle()],
    openapi_extra=form_request_body(SeedPromptSetUploadForm),
    summary="Upload a seed prompt set (multipart: name, description, file)",
)
def seed_prompt_set_upload(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    saved = import_upload(request, form_class=SeedPromptSetUploadForm, importer=importers.import_seed_prompt_set)
    return 201, seed_prompt_set_out(request, saved)  # type: ignore[arg-type]


# ---------------------------------------------------------------- few-shot sets


@router.get("/few-shot-sets", response={200: FewShotSetPage, **READ_ERRORS}, summary="Few-shot sets")
def few_shot_set_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    return _page(request, selectors.few_shot_set_list(), params, few_shot_set_out)


@router.get(
    "/few-shot-sets/{few_shot_set_id}", response={200: FewShotSetOut, **READ_ERRORS}, summary="One few-shot set"
)
def few_shot_set_get(request: HttpRequest, few_shot_set_id: int = ObjectId) -> dict[str, Any]:
    return few_shot_set_out(request, get_object_or_404(FewShotSet.objects, pk=few_shot_set_id))


@router.post(
    "/few-shot-sets",
    response={201: FewShotSetOut, **UPLOAD_ERRORS},
    throttle=[upload_throttle()],
    openapi_extra=form_request_body(FewShotSetUploadForm),
    summary="Upload a few-shot set (multipart: name, kind, description, file)",
)
def few_shot_set_upload(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    saved = import_upload(request, form_class=FewShotSetUploadForm, importer=importers.import_few_shot_set)
    return 201, few_shot_set_out(request, saved)  # type: ignore[arg-type]


# ---------------------------------------------------------------- datasets


@router.get("/datasets", response={200: ArtifactPage, **READ_ERRORS}, summary="Datasets (imported and produced)")
def dataset_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    return _page(request, selectors.dataset_list(), params, artifact_out)


@router.get("/datasets/{dataset_id}", response={200: ArtifactOut, **READ_ERRORS}, summary="One dataset")
def dataset_get(request: HttpRequest, dataset_id: int = ObjectId) -> dict[str, Any]:
    return artifact_out(request, get_object_or_404(Artifact.objects.select_related("run"), pk=dataset_id))


@router.post(
    "/datasets",
    response={201: ArtifactOut, **UPLOAD_ERRORS},
    throttle=[upload_throttle()],
    openapi_extra=form_request_body(DatasetUploadForm),
    summary="Upload a training dataset (multipart: name, purpose, file)",
)
def dataset_upload(request: HttpRequest) -> tuple[int, dict[str, Any]]:
    saved = import_upload(request, form_class=DatasetUploadForm, importer=importers.import_dataset)
    return 201, artifact_out(request, saved)  # type: ignore[arg-type]


# ---------------------------------------------------------------- rubrics


@router.get("/rubrics", response={200: RubricPage, **READ_ERRORS}, summary="Rubrics")
def rubric_list(request: HttpRequest, params: Query[PageParams]) -> dict[str, Any]:
    return _page(request, selectors.rubric_list(), params, rubric_out)


@router.get("/rubrics/{rubric_id}", response={200: RubricOut, **READ_ERRORS}, summary="One rubric")
def rubric_get(request: HttpRequest, rubric_id: int = ObjectId) -> dict[str, Any]:
    return rubric_out(request, get_object_or_404(Rubric, pk=rubric_id))


@router.post("/rubrics", response={201: RubricOut, **WRITE_ERRORS}, summary="Create a rubric (the rubric page's rules)")
def rubric_create(request: HttpRequest, body: RubricIn) -> tuple[int, dict[str, Any]]:
    form = RubricForm({**body.dict(), "configurations": json.dumps(body.configurations)})
    if not form.is_valid():
        raise form_problem(form)
    try:
        rubric = services.rubric_create(user=request.auth, **form.cleaned_data)
    except ValidationError as error:
        raise service_problem(form, error) from None
    return 201, rubric_out(request, rubric)

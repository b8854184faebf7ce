"""Artifacts (datasets runs produce or the library imports): metadata, paged rows, and the files as downloads."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path as FilePath
from typing import Any, Literal

from django.http import FileResponse, HttpRequest
from ninja import Field, Path, Query, Router, Schema

from webapp.library.models import Artifact
from webapp.runs import selectors

from ..auth import RESEARCH_AUTH
from ..errors import ApiProblem
from ..schemas import MAX_ID, READ_ERRORS, PageParams, page

router = Router(tags=["artifacts"], auth=RESEARCH_AUTH)

FileFormat = Literal["jsonl", "parquet"]
CONTENT_TYPES = {"jsonl": "application/jsonl", "parquet": "application/vnd.apache.parquet"}


class ArtifactOut(Schema):
    id: int
    name: str
    kind: str
    run: int | None
    row_count: int
    columns: list[Any]
    formats: list[str] = Field(description="The download formats this artifact has.")
    created_at: datetime
    url: str


class ArtifactPage(Schema):
    count: int
    items: list[ArtifactOut]


class ArtifactListParams(PageParams):
    run: int | None = Field(None, ge=1, le=MAX_ID)
    kind: str | None = Field(None, max_length=30)


class RowPage(Schema):
    count: int
    items: list[dict[str, Any]]


def artifact_out(request: HttpRequest, artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.pk,
        "name": artifact.name,
        "kind": artifact.kind,
        "run": artifact.run_id,
        "row_count": artifact.row_count,
        "columns": artifact.columns,
        "formats": [name for name, path in _paths(artifact).items() if path],
        "created_at": artifact.created_at,
        "url": request.build_absolute_uri(artifact.get_absolute_url()),
    }


def _paths(artifact: Artifact) -> dict[str, str]:
    return {"jsonl": artifact.jsonl_path, "parquet": artifact.parquet_path}


def _readable(path: str) -> FilePath:
    file_path = FilePath(path)
    if not path or not file_path.is_file():
        raise ApiProblem(404, "This artifact's file is not on this host (moved or deleted).")
    return file_path


@router.get("/artifacts", response={200: ArtifactPage, **READ_ERRORS}, summary="Artifacts, newest first")
def artifact_list(request: HttpRequest, params: Query[ArtifactListParams]) -> dict[str, Any]:
    artifacts = Artifact.objects.select_related("run").order_by("-created_at", "-pk")
    if params.run is not None:
        artifacts = artifacts.filter(run_id=params.run)
    if params.kind:
        artifacts = artifacts.filter(kind=params.kind)
    result = page(artifacts, params)
    return {"count": result["count"], "items": [artifact_out(request, artifact) for artifact in result["items"]]}


@router.get("/artifacts/{artifact_id}", response={200: ArtifactOut, **READ_ERRORS}, summary="One artifact's metadata")
def artifact_get(request: HttpRequest, artifact_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return artifact_out(request, selectors.artifact_get(artifact_id=artifact_id))


@router.get("/artifacts/{artifact_id}/rows", response={200: RowPage, **READ_ERRORS}, summary="Rows of an artifact")
def artifact_rows(
    request: HttpRequest, params: Query[PageParams], artifact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    artifact = selectors.artifact_get(artifact_id=artifact_id)
    _readable(artifact.jsonl_path)
    rows = selectors.artifact_rows(artifact=artifact, offset=params.offset, limit=params.limit)
    return {"count": artifact.row_count, "items": rows}


@router.get(
    "/artifacts/{artifact_id}/download",
    response={**READ_ERRORS},
    summary="The artifact's file, streamed: the same bytes as the page's download link",
    openapi_extra={
        "responses": {
            200: {
                "description": "The file (JSONL or parquet), as an attachment.",
                "content": {
                    content_type: {"schema": {"type": "string", "format": "binary"}}
                    for content_type in CONTENT_TYPES.values()
                },
            }
        }
    },
)
def artifact_download(
    request: HttpRequest, artifact_id: int = Path(..., ge=1, le=MAX_ID), format: FileFormat = "jsonl"
) -> FileResponse:
    artifact = selectors.artifact_get(artifact_id=artifact_id)
    path = _paths(artifact)[format]
    if not path:
        raise ApiProblem(404, f"This artifact has no {format} file.")
    file_path = _readable(path)
    # The page's name for the file (webapp/runs/views.py: artifact_download), so both save the same file.
    filename = f"{artifact.run.run_dir_name if artifact.run else 'artifact'}-{artifact.name}.{format}"
    return FileResponse(file_path.open("rb"), as_attachment=True, filename=filename, content_type=CONTENT_TYPES[format])

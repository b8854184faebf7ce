"""`RefineryClient(base_url, token)`: one method per API operation, grouped by resource.

Answers are the API's JSON as typed dictionaries (the shapes in docs/api.md); an answer other than
2xx raises ApiError (AuthenticationFailed for 401, ValidationFailed for 400/422 with one FieldError
per field). Downloads stream to a file, so a large artifact never sits in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypedDict

import httpx

from .errors import ApiError, RunDidNotSucceed

API_PREFIX = "/api/v1"
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "lost"})
DownloadFormat = Literal["jsonl", "parquet"]


class Progress(TypedDict, total=False):
    done: int  # the current stage's counts
    total: int
    fraction: float | None  # the whole run's, across its kind's stages
    stage_number: int | None
    stage_count: int | None
    eta_seconds: float | None


class ArtifactSummary(TypedDict):
    id: int
    name: str
    kind: str
    row_count: int


class Run(TypedDict, total=False):
    id: int
    kind: str
    kind_label: str
    name: str
    status: str
    stage: str
    progress: Progress
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str
    config: dict[str, Any]
    summary: dict[str, Any]
    artifacts: list[ArtifactSummary]
    models: list[dict[str, Any]]
    url: str


class Page(TypedDict):
    count: int
    items: list[dict[str, Any]]


class _Resource:
    def __init__(self, client: RefineryClient) -> None:
        self._client = client


class Runs(_Resource):
    """Runs of every kind: create (validated as the kind's form), list, get, cancel, resume, log, wait."""

    def kinds(self) -> list[dict[str, Any]]:
        return self._client.request("GET", "/run-kinds")

    def create(
        self,
        kind: str,
        *,
        fields: dict[str, Any] | None = None,
        preset: str | None = None,
        name: str = "",
        idempotency_key: str | None = None,
    ) -> Run:
        """Queue a run; `fields` are the kind's form fields by name (those left out keep the form's initial value)."""
        body = {"kind": kind, "name": name, "preset": preset, "fields": fields or {}}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._client.request("POST", "/runs", json=body, headers=headers)

    def list(self, *, status: str | None = None, kind: str | None = None, offset: int = 0, limit: int = 50) -> Page:
        return self._client.request(
            "GET", "/runs", params={"status": status, "kind": kind, "offset": offset, "limit": limit}
        )

    def get(self, run_id: int) -> Run:
        return self._client.request("GET", f"/runs/{run_id}")

    def cancel(self, run_id: int) -> Run:
        return self._client.request("POST", f"/runs/{run_id}/cancel")

    def resume(self, run_id: int) -> Run:
        return self._client.request("POST", f"/runs/{run_id}/resume")

    def log(self, run_id: int, *, tail: int = 200) -> list[str]:
        return self._client.request("GET", f"/runs/{run_id}/log", params={"tail": tail})["lines"]

    def wait(
        self,
        run_id: int,
        *,
        poll_seconds: float = 1.0,
        timeout_seconds: float | None = None,
        on_update: Callable[[Run], None] | None = None,
    ) -> Run:
        """Poll until the run is final; returns it if it succeeded, raises RunDidNotSucceed otherwise.

        `on_update` sees every state read (the CLI draws its progress bar from it).
        """
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            run = self.get(run_id)
            if on_update is not None:
                on_update(run)
            if run["status"] in FINAL_STATUSES:
                if run["status"] != "succeeded":
                    raise RunDidNotSucceed(run)
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {run['status']} after {timeout_seconds} s")
            time.sleep(poll_seconds)


class Artifacts(_Resource):
    """Datasets runs produced or the library imported: metadata, paged rows, streamed downloads."""

    def list(self, *, run: int | None = None, kind: str | None = None, offset: int = 0, limit: int = 50) -> Page:
        return self._client.request(
            "GET", "/artifacts", params={"run": run, "kind": kind, "offset": offset, "limit": limit}
        )

    def get(self, artifact_id: int) -> dict[str, Any]:
        return self._client.request("GET", f"/artifacts/{artifact_id}")

    def rows(self, artifact_id: int, *, offset: int = 0, limit: int = 50) -> Page:
        return self._client.request("GET", f"/artifacts/{artifact_id}/rows", params={"offset": offset, "limit": limit})

    def download(
        self,
        artifact_id: int,
        destination: str | Path | None = None,
        *,
        file_format: DownloadFormat = "jsonl",
        on_chunk: Callable[[int, int | None], None] | None = None,
    ) -> Path:
        """Stream the file to `destination` (a file, or a directory for the server's file name); returns its path.

        The file appears only once complete (written beside it, then renamed), so an interrupted
        download never leaves a truncated file under the final name. `on_chunk(bytes, total)` reports progress.
        """
        with self._client.stream(
            "GET", f"/artifacts/{artifact_id}/download", params={"format": file_format}
        ) as response:
            target = _download_target(
                destination, _attachment_name(response) or f"artifact-{artifact_id}.{file_format}"
            )
            total = int(response.headers["content-length"]) if "content-length" in response.headers else None
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as output:
                    for chunk in response.iter_bytes():
                        output.write(chunk)
                        if on_chunk is not None:
                            on_chunk(len(chunk), total)
                os.replace(partial, target)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
        return target


class _ReadOnly(_Resource):
    path = ""

    def list(self, *, offset: int = 0, limit: int = 50, **filters: Any) -> Page:
        return self._client.request("GET", self.path, params={**filters, "offset": offset, "limit": limit})

    def get(self, object_id: int) -> dict[str, Any]:
        return self._client.request("GET", f"{self.path}/{object_id}")


class _Uploadable(_ReadOnly):
    def upload(self, *files: str | Path, name: str, **form_fields: Any) -> dict[str, Any]:
        """Upload file(s) with the page's form fields (multipart); the import's refusals come back per field."""
        data = {key: _form_value(value) for key, value in {"name": name, **form_fields}.items() if value is not None}
        with contextlib.ExitStack() as open_files:
            parts = [("file", (Path(file).name, open_files.enter_context(Path(file).open("rb")))) for file in files]
            return self._client.request("POST", self.path, data=data, files=parts)


class Models(_ReadOnly):
    path = "/models"

    def lineage(self, model_id: int) -> Any:
        return self._client.request("GET", f"{self.path}/{model_id}/lineage")


class Corpora(_Uploadable):
    path = "/corpora"


class SeedPromptSets(_Uploadable):
    path = "/seed-prompt-sets"


class Datasets(_Uploadable):
    path = "/datasets"


class Evaluations(_ReadOnly):
    path = "/evaluations"

    def leaderboard(self) -> Any:
        return self._client.request("GET", "/leaderboard")


class Campaigns(_ReadOnly):
    path = "/campaigns"

    def statistics(self, campaign_id: int) -> dict[str, Any]:
        return self._client.request("GET", f"{self.path}/{campaign_id}/statistics")


class RefineryClient:
    """A session with one Refinery site, authenticated by a personal API token (`rfy_...`)."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + API_PREFIX,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": "refinery-client/1",
            },
            timeout=timeout,
            transport=transport,
        )
        self.runs = Runs(self)
        self.artifacts = Artifacts(self)
        self.models = Models(self)
        self.corpora = Corpora(self)
        self.prompt_sets = SeedPromptSets(self)
        self.datasets = Datasets(self)
        self.evaluations = Evaluations(self)
        self.campaigns = Campaigns(self)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, **options: Any) -> Any:
        """One API call; the decoded JSON, or ApiError naming what the server refused."""
        response = self._http.request(method, path, params=_without_none(params), **options)
        if response.is_error:
            raise _error(response)
        return response.json() if response.content else None

    def stream(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> _Stream:
        return _Stream(self._http, method, path, _without_none(params))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RefineryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Stream:
    """A streamed response that raises ApiError (with the body read) on an error status."""

    def __init__(self, http: httpx.Client, method: str, path: str, params: dict[str, Any] | None) -> None:
        self._context = http.stream(method, path, params=params)

    def __enter__(self) -> httpx.Response:
        response = self._context.__enter__()
        if response.is_error:
            response.read()
            error = _error(response)
            self._context.__exit__(None, None, None)
            raise error
        return response

    def __exit__(self, *exc_info: Any) -> None:
        self._context.__exit__(*exc_info)


def _error(response: httpx.Response) -> ApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    error = ApiError.from_response(response.status_code, body, response.request.method, str(response.request.url))
    if response.status_code == 429 and response.headers.get("retry-after"):
        error.detail += f" Try again in {response.headers['retry-after']} s."
        error.args = (error.describe(),)
    return error


def _form_value(value: Any) -> str:
    """A multipart form value as a Django form reads it (booleans as "on"/"")."""
    if isinstance(value, bool):
        return "on" if value else ""
    return str(value)


def _without_none(params: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if params is None else {key: value for key, value in params.items() if value is not None}


def _attachment_name(response: httpx.Response) -> str | None:
    disposition = response.headers.get("content-disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            # Only a bare name: a server (or a proxy) must not choose where on disk the file goes.
            return Path(value.strip().strip('"')).name or None
    return None


def _download_target(destination: str | Path | None, server_name: str) -> Path:
    if destination is None:
        return Path.cwd() / server_name
    target = Path(destination)
    return target / server_name if target.is_dir() else target


def iter_pages(fetch: Callable[[int, int], Page], *, limit: int = 100) -> Iterator[dict[str, Any]]:
    """Every item of a paged list: `fetch(offset, limit)` is e.g. `lambda o, n: client.runs.list(offset=o, limit=n)`."""
    offset = 0
    while True:
        page = fetch(offset, limit)
        yield from page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["count"]:
            return

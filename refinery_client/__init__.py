"""Refinery's Python client and `refinery` command: the /api/v1 JSON API from a notebook, a script or a shell.

    from refinery_client import RefineryClient
    client = RefineryClient("http://127.0.0.1:8000", token="rfy_...")
    run = client.runs.create("generate", fields={"max_new_tokens": 64})
    run = client.runs.wait(run["id"])  # raises RunDidNotSucceed if it failed or was cancelled
    client.artifacts.download(run["artifacts"][0]["id"], "answers.parquet", file_format="parquet")

Needs only httpx (and tqdm for the progress bar, when installed); never imports the server's code.
"""

from __future__ import annotations

from .client import RefineryClient
from .errors import ApiError, AuthenticationFailed, RunDidNotSucceed, ValidationFailed

__all__ = ["ApiError", "AuthenticationFailed", "RefineryClient", "RunDidNotSucceed", "ValidationFailed"]

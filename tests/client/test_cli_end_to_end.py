"""The `refinery` command end to end, as a user runs it: a separate process talking HTTP to the live test server,
a real rqworker and the bundled 135M model. Create a generate run with --wait, download its artifact, and get
the very bytes (and file name) the run page's download link gives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.generate_runs import prompt_set_of
from tests.fixtures.services import REPOSITORY_ROOT
from webapp.library.models import Artifact
from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.slow

RUN_TIMEOUT_SECONDS = 300


def _refinery(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("REFINERY_")}
    environment["REFINERY_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "refinery_client.cli", *arguments],
        cwd=REPOSITORY_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )


def test_a_generate_run_created_and_awaited_from_the_shell_downloads_the_pages_bytes(
    api_site, rq_worker, settings, client, tmp_path
):
    from pipelines.llm.embedded import ensure_embedded_model
    from webapp.registry.services import model_ensure_embedded

    ensure_embedded_model(settings.MODEL_CACHE_DIR)  # converted once per cache, so the wait measures the run
    model = model_ensure_embedded()
    prompt_set = prompt_set_of(3, "cli prompts")
    rq_worker().wait_ready()
    config = tmp_path / "config.json"

    login = _refinery(config, "login", "--url", api_site.url, "--token", api_site.token)
    assert login.returncode == 0, login.stderr

    created = _refinery(
        config,
        "runs", "create", "generate", "--name", "from the shell", "--wait", "--poll", "0.5",
        "--set", f"model={model.pk}", "--set", f"prompt_set={prompt_set.pk}",
        "--set", "max_tokens=4", "--set", "batch_size=2", "--set", "seed=0",
    )  # fmt: skip
    assert created.returncode == 0, f"{created.stdout}\n{created.stderr}"
    run_id = int(re.search(r"Queued run #(\d+)", created.stderr).group(1))
    run = PipelineRun.objects.get(pk=run_id)
    assert run.status == PipelineRun.Status.SUCCEEDED and run.name == "from the shell"
    assert f"run {run_id} running" in created.stderr  # the progress bar's label while it ran
    assert "status:   succeeded" in created.stdout

    artifact = Artifact.objects.get(run=run)
    assert f"artifact: #{artifact.pk}" in created.stdout
    client.force_login(api_site.user)
    for file_format in ("parquet", "jsonl"):
        downloads = tmp_path / f"downloads-{file_format}"
        downloads.mkdir()
        fetched = _refinery(
            config, "artifacts", "download", str(artifact.pk), "--format", file_format, "-o", str(downloads)
        )
        assert fetched.returncode == 0, fetched.stderr
        page = client.get(f"/runs/artifacts/{artifact.pk}/download/{file_format}/")
        assert page.status_code == 200
        page_name = re.search(r'filename="([^"]+)"', page["Content-Disposition"]).group(1)
        saved = list(downloads.iterdir())
        assert [path.name for path in saved] == [page_name]
        assert saved[0].read_bytes() == b"".join(page.streaming_content)
    assert artifact.row_count == 3

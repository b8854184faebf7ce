"""The disk fills up while a run writes its export: the run fails saying so, and nothing written before is harmed.

The worker's ARTIFACT_ROOT is a small tmpfs. Once some batches are on disk the test fills the rest
with a ballast file, leaving room for the remaining batch files (one page each) but not for the
export, which copies every batch into `generations.jsonl` and `.parquet`. After the failure the
ballast goes, and a resume finishes from the batches already there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.support import (
    artifact_rows,
    assert_every_prompt_once,
    batch_files,
    start_generate_run,
    step_worker_until,
    tiny_model_entry,
)
from tests.fixtures.runs import wait_for_run
from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.runs import services
from webapp.runs.models import PipelineRun

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGE = 4096
PROMPTS = 16
SPARE_PAGES = 3
"""Room left beyond the remaining batch files: less than the export needs (13+ pages), more than a batch's race."""


@pytest.fixture
def small_artifact_disk(live_settings) -> Iterator[Path]:
    """A 2 MiB tmpfs as this test's ARTIFACT_ROOT (the worker inherits it); skipped where mounting is not allowed."""
    mount_point = Path(tempfile.mkdtemp(prefix="refinery-fault-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"a full disk needs a small tmpfs and mount was refused: {mounted.stderr.strip()}")
    live_settings.ARTIFACT_ROOT = mount_point
    live_settings.MEDIA_ROOT = mount_point / "uploads"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
        mount_point.rmdir()


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fingerprints(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def long_prompt_set(name: str) -> SeedPromptSet:
    """Prompts of ~3 KB, so each one-prompt batch file takes nearly its whole page and the export many pages."""
    prompt_set = SeedPromptSet.objects.create(name=name, prompt_count=PROMPTS)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=index, text=f"Question {index}: " + "why is the sky blue? " * 150)
        for index in range(PROMPTS)
    )
    return prompt_set


def test_a_full_disk_during_the_export_fails_the_run_with_the_reason_and_keeps_what_was_written(
    small_artifact_disk: Path, rq_worker, researcher, tiny_model_dir
):
    model = tiny_model_entry(tiny_model_dir)
    worker = rq_worker()
    earlier = start_generate_run(
        researcher, model, long_prompt_set("earlier"), batch_size=8, max_tokens=4, name="earlier"
    )
    earlier = wait_for_run(earlier, timeout=180, what="an earlier run to finish on the small disk")
    assert earlier.status == PipelineRun.Status.SUCCEEDED, earlier.error + worker.log_text()[-3000:]
    earlier_files = fingerprints(services.run_directory(earlier))

    worker.pause()  # before the job is queued: the run cannot reach its export before the disk is filled
    run = start_generate_run(
        researcher, model, long_prompt_set("later"), batch_size=1, max_tokens=8, name="fills the disk"
    )
    batch_dir = services.run_directory(run) / "batches"
    step_worker_until(worker, run, lambda: len(batch_files(batch_dir)) >= 4, what="4 batches are on disk")
    remaining_batches = PROMPTS - len(batch_files(batch_dir))
    assert remaining_batches > 0, "the disk must fill while the run has batches left"
    ballast = small_artifact_disk / "ballast"
    room_to_leave = (remaining_batches + SPARE_PAGES) * PAGE
    with ballast.open("wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, free_bytes(small_artifact_disk) - room_to_leave)
    worker.resume()

    run = wait_for_run(run, timeout=180, what="the run to end on the full disk")

    assert run.status == PipelineRun.Status.FAILED, f"{run.status} at {run.stage}: {run.error}"
    assert run.stage == "export", f"the disk filled before the export ({run.stage}); SPARE_PAGES is too small"
    assert "No space left on device" in run.error, run.error
    batches = fingerprints(batch_dir)
    assert len(batches) == PROMPTS, f"batch files lost or half-written: {sorted(batches)}"
    leftovers = [path.name for path in services.run_directory(run).iterdir() if path.name.startswith(".")]
    assert not leftovers, f"the failed export left temp files filling the disk: {leftovers}"
    assert not (services.run_directory(run) / "generations.jsonl").exists(), "a partial export was renamed into place"
    assert fingerprints(services.run_directory(earlier)) == earlier_files, "the earlier run's files changed"

    ballast.unlink()
    services.run_resume(run=run)
    run = wait_for_run(run, timeout=180, what="the resumed run to finish once there is room")
    assert run.status == PipelineRun.Status.SUCCEEDED, run.error
    assert_every_prompt_once(artifact_rows(run, "generations"), PROMPTS)
    assert run.summary["batches_generated_this_attempt"] == 0
    assert fingerprints(batch_dir) == batches

"""`start_demo_run`: queues the demo run once; a repeated demo.sh finds it instead of queueing another."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from webapp.runs.models import PipelineRun

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("start_demo_run", *args, stdout=out)
    return out.getvalue()


def test_the_demo_run_is_queued_once_and_reused(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    call_command("load_demo_data", stdout=io.StringIO())
    assert "Queued demo run" in _run()
    assert "already exists" in _run()
    assert PipelineRun.objects.count() == 1
    PipelineRun.objects.update(status=PipelineRun.Status.FAILED)
    assert "Queued demo run" in _run()
    assert "Queued demo run" in _run("--again")
    assert PipelineRun.objects.count() == 3

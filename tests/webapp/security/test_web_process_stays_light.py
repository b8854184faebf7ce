"""The web process never loads a model: serving every page must not import torch or transformers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys, django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns  # imports every view module
import webapp.runs.services, workers.jobs  # the web side enqueues by the job's dotted path
from webapp.runs.registry import all_run_kinds
assert all_run_kinds(), "no run kind registered"  # the apps registered theirs, run-page sections included
heavy = sorted(name for name in ("torch", "transformers", "trl", "peft", "vllm", "sentence_transformers") if name in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def test_views_services_and_job_modules_import_no_ml_framework():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test"}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY:\n" in result.stdout, result.stdout

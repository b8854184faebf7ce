"""The generate run kind."""

from __future__ import annotations

from pipelines.generate.stages import generate_stages
from webapp.runs.registry import RunClone, RunKind

GENERATE = RunKind(
    kind="generate",
    label="Generate answers",
    queue="gpu",
    job="workers.kinds.generate.prepare",
    form="webapp.generate.forms.GenerateRunForm",
    config_build="webapp.generate.forms.generate_run_config",
    clone=RunClone(form_url="generate:new"),
    stages=lambda config: generate_stages(),
)

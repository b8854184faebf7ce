"""Recording a dataset file on disk as an `Artifact` row: its row count, columns and first rows.

Two steps, so a caller reads the file outside its transaction and writes the row inside it: a run's
artifact checks the run's attempt fence in that same transaction (`webapp.runs.services.artifact_register`),
an imported dataset has no run and no fence (`webapp.library.services.dataset_import`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import models

from .models import Artifact

PREVIEW_ROWS = 20


@dataclass(frozen=True)
class DatasetFileSummary:
    """What the pages show of a dataset without opening its file: rows, columns, the first rows."""

    row_count: int
    columns: list[str]
    preview: list[dict[str, Any]]


def dataset_file_summary(jsonl_path: Path) -> DatasetFileSummary:
    """Count the rows by streaming the file; keep the first PREVIEW_ROWS and every column they use."""
    preview: list[dict[str, Any]] = []
    columns: list[str] = []
    row_count = 0
    with Path(jsonl_path).open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            if row_count < PREVIEW_ROWS:
                row = json.loads(line)
                preview.append(row)
                columns.extend(key for key in row if key not in columns)
            row_count += 1
    return DatasetFileSummary(row_count=row_count, columns=columns, preview=preview)


def artifact_save(
    *,
    run: models.Model | None,
    name: str,
    kind: str,
    jsonl_path: Path,
    parquet_path: Path | None,
    summary: DatasetFileSummary,
) -> Artifact:
    """Create the artifact, or replace the one of the same name from the same run (a resumed run
    exports again). The caller holds the transaction."""
    artifact, _ = Artifact.objects.update_or_create(
        run=run,
        name=name,
        defaults={
            "kind": kind,
            "jsonl_path": str(jsonl_path),
            "parquet_path": str(parquet_path or ""),
            "row_count": summary.row_count,
            "columns": summary.columns,
            "preview": summary.preview,
        },
    )
    return artifact

"""Curating an artifact, Argilla's loop kept simple: review its rows, drop, flag or edit them, save a new artifact.

A user's changes live in a `CurationDraft` (one per user and artifact) until "Save as new artifact"
streams the parent's rows through the draft into a new JSONL + parquet pair and registers it with
its lineage (`Artifact.parent`, `created_by`, and the changes in `Artifact.curation`). The parent's
files and row are never modified. Rows are always streamed: a page reads up to its last row (or the
whole file once, to count matches, when a search or filter is on), and saving holds one batch.

Row indices count the artifact's non-blank JSONL lines from 0, as `webapp.runs.selectors.artifact_rows`
does; pages show them from 1.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.utils import timezone

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.common.tables import write_table_in_batches
from pipelines.errors import InvalidInputError
from webapp.accounts.permissions import RESEARCH_ROLES

from .artifacts import artifact_save, dataset_file_summary
from .models import Artifact, CurationDraft

PAGE_SIZE = 25
SAVE_BATCH_ROWS = 500
SHOW_CHOICES = [
    ("all", "All rows"),
    ("kept", "Kept rows"),
    ("dropped", "Dropped rows"),
    ("flagged", "Flagged rows"),
    ("edited", "Edited rows"),
]
ROW_ACTIONS = ("drop", "restore", "flag", "unflag")
# The edit form puts the cursor in the first of these a row has (else its first text field).
RESPONSE_COLUMNS = ("response", "answer", "output", "completion", "chosen", "final_answer")


# ---------------------------------------------------------------------------------------------- reads


def cell_text(value: object) -> str:
    """A cell as text: strings as they are, lists of answers numbered one per paragraph, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        if len(value) > 1:
            return "\n\n".join(f"[{index}] {item}" for index, item in enumerate(value, start=1))
        return "".join(value)
    return json.dumps(value, ensure_ascii=False)


def _texts(value: object) -> Iterator[str]:
    """Every string in a value, nested lists and objects included (chat messages, answer lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif value is not None:
        yield str(value)


@dataclass(frozen=True)
class RowFilters:
    """What the row viewer narrows to: words that must all appear (any text field), one column's
    value (whole cell, case ignored), and the draft status of the row."""

    query: str = ""
    column: str = ""
    value: str = ""
    show: str = "all"

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, columns: list[str]) -> RowFilters:
        """Read the viewer's GET parameters; an unknown column or status is refused by name."""
        column = params.get("column", "").strip()
        show = params.get("show", "").strip() or "all"
        if column and column not in columns:
            raise ValidationError({"column": f"“{column}” is not a column of this artifact ({', '.join(columns)})."})
        if show not in dict(SHOW_CHOICES):
            raise ValidationError({"show": f"“{show}” is not one of {', '.join(dict(SHOW_CHOICES))}."})
        return cls(query=params.get("q", "").strip(), column=column, value=params.get("value", "").strip(), show=show)

    @property
    def active(self) -> bool:
        return bool(self.query or self.column or self.show != "all")

    def matches(self, row: dict[str, Any], *, dropped: bool, flagged: bool, edited: bool) -> bool:
        if self.show == "kept" and dropped:
            return False
        if (self.show == "dropped" and not dropped) or (self.show == "flagged" and not flagged):
            return False
        if self.show == "edited" and not edited:
            return False
        if self.column and cell_text(row.get(self.column, "")).strip().casefold() != self.value.casefold():
            return False
        if self.query:
            haystack = "\n".join(_texts(row)).casefold()
            return all(word in haystack for word in self.query.casefold().split())
        return True


@dataclass(frozen=True)
class Cell:
    column: str
    text: str
    is_text: bool
    edited: bool


@dataclass(frozen=True)
class CurationRow:
    """One row as the viewer shows it: the draft's edits applied, its marks, the columns one may edit."""

    index: int
    cells: list[Cell]
    dropped: bool
    flagged: bool
    edited: bool
    editable_values: dict[str, str] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def response_column(self) -> str:
        """The text field an edit most likely means: the response, when the row has one."""
        columns = [column for column in RESPONSE_COLUMNS if column in self.editable_values]
        return columns[0] if columns else next(iter(self.editable_values), "")


@dataclass(frozen=True)
class DraftSummary:
    row_count: int
    dropped: int
    flagged: int
    edited: int

    @property
    def kept(self) -> int:
        return self.row_count - self.dropped

    @property
    def has_changes(self) -> bool:
        return bool(self.dropped or self.edited)


@dataclass(frozen=True)
class CurationPage:
    rows: list[CurationRow]
    page: Page
    match_count: int
    filters: RowFilters


def curation_draft(*, artifact: Artifact, user: Any) -> CurationDraft:
    """The user's draft on the artifact, or an empty unsaved one: reading never writes."""
    return CurationDraft.objects.filter(artifact=artifact, user=user).first() or CurationDraft(
        artifact=artifact, user=user
    )


def draft_summary(*, artifact: Artifact, draft: CurationDraft) -> DraftSummary:
    return DraftSummary(
        row_count=artifact.row_count,
        dropped=len(draft.dropped_rows),
        flagged=len(draft.flagged_rows),
        edited=len(draft.edited_values),
    )


def _numbered_rows(artifact: Artifact) -> Iterator[tuple[int, dict[str, Any]]]:
    return enumerate(read_jsonl_rows(artifact.jsonl_path))


def _edited(row: dict[str, Any], edits: Mapping[str, str] | None) -> dict[str, Any]:
    return {**row, **edits} if edits else row


def _curation_row(artifact: Artifact, draft: CurationDraft, index: int, row: dict[str, Any]) -> CurationRow:
    edits = draft.edited_values.get(str(index), {})
    shown = _edited(row, edits)
    return CurationRow(
        index=index,
        cells=[
            Cell(
                column=column,
                text=cell_text(shown.get(column, "")),
                is_text=isinstance(shown.get(column, ""), str),
                edited=column in edits,
            )
            for column in artifact.columns
        ],
        dropped=index in draft.dropped_rows,
        flagged=index in draft.flagged_rows,
        edited=bool(edits),
        editable_values={column: value for column, value in shown.items() if isinstance(row.get(column), str)},
    )


def _matching_rows(
    artifact: Artifact, draft: CurationDraft, filters: RowFilters
) -> Iterator[tuple[int, dict[str, Any]]]:
    dropped, flagged = set(draft.dropped_rows), set(draft.flagged_rows)
    for index, row in _numbered_rows(artifact):
        edits = draft.edited_values.get(str(index))
        shown = _edited(row, edits)
        if filters.matches(shown, dropped=index in dropped, flagged=index in flagged, edited=bool(edits)):
            yield index, row


def curation_page(
    *, artifact: Artifact, draft: CurationDraft, filters: RowFilters, page_number: str | int | None
) -> CurationPage:
    """One page of the rows that match, read by streaming the JSONL (never all rows in memory).

    Without a filter the page stops reading at its last row. With one, a single pass counts the
    matches (so the pager is right) and keeps the requested page's; only a page number past the
    end (the pager then shows the last page) costs a second pass.
    """
    try:
        requested = max(1, int(page_number or 1))
    except (TypeError, ValueError):
        requested = 1  # as Paginator.get_page reads a page number that is not one
    first = (requested - 1) * PAGE_SIZE
    kept: list[tuple[int, dict[str, Any]]] = []
    if filters.active:
        match_count = 0
        for position, (index, row) in enumerate(_matching_rows(artifact, draft, filters)):
            if first <= position < first + PAGE_SIZE:
                kept.append((index, row))
            match_count = position + 1
    else:
        match_count = artifact.row_count
    page = Paginator(range(match_count), PAGE_SIZE).get_page(page_number)
    if not filters.active or page.number != requested:
        start = page.start_index() - 1 if match_count else 0
        kept = list(islice(_matching_rows(artifact, draft, filters), start, start + PAGE_SIZE))
    rows = [_curation_row(artifact, draft, index, row) for index, row in kept]
    return CurationPage(rows=rows, page=page, match_count=match_count, filters=filters)


def curation_row(*, artifact: Artifact, draft: CurationDraft, row_index: int) -> CurationRow:
    """One row, for the partial that replaces it in place after an action."""
    return _curation_row(artifact, draft, row_index, _read_row(artifact, row_index))


# --------------------------------------------------------------------------------------------- writes


def _check_may_curate(user: Any) -> None:
    """Researchers and admins curate; annotators (and anyone else) are refused, as the pages refuse them."""
    if not getattr(user, "is_authenticated", False) or user.effective_role not in RESEARCH_ROLES:
        raise PermissionDenied("Only researchers and admins curate artifacts.")


def _check_row_index(artifact: Artifact, row_index: int) -> None:
    if not 0 <= row_index < artifact.row_count:
        raise ValidationError(f"Row {row_index + 1} does not exist: “{artifact.name}” has {artifact.row_count} rows.")


def _read_row(artifact: Artifact, row_index: int) -> dict[str, Any]:
    _check_row_index(artifact, row_index)
    for _index, row in islice(_numbered_rows(artifact), row_index, row_index + 1):
        return row
    raise ValidationError(f"Row {row_index + 1} of “{artifact.name}” is missing from its file {artifact.jsonl_path}.")


def _draft_for_update(artifact: Artifact, user: Any) -> CurationDraft:
    """The user's draft, created if needed and locked for the caller's transaction."""
    draft, _ = CurationDraft.objects.select_for_update().get_or_create(artifact=artifact, user=user)
    return draft


def _save_or_forget(draft: CurationDraft) -> None:
    if draft.is_empty:
        draft.delete()
    else:
        draft.full_clean()
        draft.save()


def curation_row_mark(*, artifact: Artifact, user: Any, row_index: int, action: str) -> CurationDraft:
    """Drop or restore, flag or unflag one row in the user's draft."""
    _check_may_curate(user)
    if action not in ROW_ACTIONS:
        raise ValidationError(f"“{action}” is not a row action ({', '.join(ROW_ACTIONS)}).")
    _check_row_index(artifact, row_index)
    with transaction.atomic():
        draft = _draft_for_update(artifact, user)
        attribute = "dropped_rows" if action in ("drop", "restore") else "flagged_rows"
        marked = set(getattr(draft, attribute))
        if action in ("drop", "flag"):
            marked.add(row_index)
        else:
            marked.discard(row_index)
        setattr(draft, attribute, sorted(marked))
        _save_or_forget(draft)
    return draft


def curation_row_edit(*, artifact: Artifact, user: Any, row_index: int, values: Mapping[str, str]) -> CurationDraft:
    """Record new text for some of a row's text fields; text equal to the original undoes the edit.

    Only fields that hold text in the artifact can be edited (a list or a number would change the
    column's type); line endings from the browser's text box are read as "\\n".
    """
    _check_may_curate(user)
    original = _read_row(artifact, row_index)
    for column in values:
        if not isinstance(original.get(column), str):
            raise ValidationError(
                {column: f"“{column}” of row {row_index + 1} is not a text field and cannot be edited."}
            )
    with transaction.atomic():
        draft = _draft_for_update(artifact, user)
        edits = dict(draft.edited_values.get(str(row_index), {}))
        for column, value in values.items():
            text = value.replace("\r\n", "\n")
            if text == original[column]:
                edits.pop(column, None)
            else:
                edits[column] = text
        edited_values = {key: value for key, value in draft.edited_values.items() if key != str(row_index)}
        if edits:
            edited_values[str(row_index)] = edits
        draft.edited_values = dict(sorted(edited_values.items(), key=lambda item: int(item[0])))
        _save_or_forget(draft)
    return draft


def curation_discard(*, artifact: Artifact, user: Any) -> None:
    """Forget the user's draft on the artifact (the artifact itself never changed)."""
    _check_may_curate(user)
    CurationDraft.objects.filter(artifact=artifact, user=user).delete()


def _kept_batches(artifact: Artifact, draft: CurationDraft) -> Iterator[list[dict[str, Any]]]:
    """The parent's rows minus the dropped ones, edits applied, SAVE_BATCH_ROWS at a time."""
    dropped = set(draft.dropped_rows)
    kept = (
        _edited(row, draft.edited_values.get(str(index)))
        for index, row in _numbered_rows(artifact)
        if index not in dropped
    )
    while batch := list(islice(kept, SAVE_BATCH_ROWS)):
        yield batch


def curation_save(*, artifact: Artifact, user: Any, name: str) -> Artifact:
    """Write the draft's result as a new artifact of the parent's kind, with its lineage; forget the draft.

    The rows stream from the parent's JSONL through the draft into the new JSONL and parquet (the
    writers every run uses), so memory holds one batch whatever the size. Refused, changing nothing:
    a name already taken by another dataset, a draft that drops or edits nothing, every row dropped,
    or a draft naming rows the artifact no longer has (its run exported it again since).
    """
    import pyarrow as pa

    _check_may_curate(user)
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the new artifact a name."})
    if Artifact.objects.filter(run=None, name=name).exists():
        raise ValidationError({"name": f"A dataset named “{name}” already exists; choose another name."})
    draft = CurationDraft.objects.filter(artifact=artifact, user=user).first()
    if draft is None or not (draft.dropped_rows or draft.edited_values):
        raise ValidationError("Nothing to save: drop or edit a row first (flags alone change no data).")
    marked_rows = [*draft.dropped_rows, *draft.flagged_rows, *(int(key) for key in draft.edited_values)]
    if max(marked_rows) >= artifact.row_count:
        raise ValidationError(
            f"“{artifact.name}” now has {artifact.row_count} rows, fewer than this draft names (row "
            f"{max(marked_rows) + 1}); its run exported it again. Discard the draft and start over."
        )
    if len(draft.dropped_rows) >= artifact.row_count:
        raise ValidationError("Every row is dropped: restore at least one row to save a new artifact.")

    directory = Path(settings.ARTIFACT_ROOT) / "datasets" / uuid.uuid4().hex
    directory.mkdir(parents=True)
    try:
        try:
            table = write_table_in_batches(
                directory / "data.jsonl", _kept_batches(artifact, draft), empty_columns=artifact.columns
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValidationError(f"The rows of “{artifact.name}” do not fit one table: {error}") from None
        except InvalidInputError as error:
            raise ValidationError(f"The rows of “{artifact.name}” cannot be read: {error}") from None
        summary = dataset_file_summary(table.jsonl_path)
        with transaction.atomic():
            child = artifact_save(
                run=None,
                name=name,
                kind=artifact.kind,
                jsonl_path=table.jsonl_path,
                parquet_path=table.parquet_path,
                summary=summary,
            )
            child.parent = artifact
            child.created_by = user
            child.curation = {
                "parent_id": artifact.pk,
                "parent_name": artifact.name,
                "curated_by": user.get_username(),
                "curated_at": timezone.now().isoformat(),
                "parent_row_count": artifact.row_count,
                "row_count": table.row_count,
                "dropped_rows": draft.dropped_rows,
                "edited_values": draft.edited_values,
                "flagged_rows": draft.flagged_rows,
            }
            child.full_clean()
            child.save(update_fields=["parent", "created_by", "curation"])
            draft.delete()
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return child

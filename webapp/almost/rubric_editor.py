"""The rubric editor's state: the first rubric a new form offers, and what each editor button does to the rows.

The editor works on raw posted rows (`forms.rubric_rows`), so a half-filled row can still be moved
or removed; only "sort" needs the rows' models and demonstration sets, and a row that does not
resolve keeps its place after the ones that do.
"""

from __future__ import annotations

from typing import Any

from webapp.library.models import FewShotSet
from webapp.registry.models import ModelEntry

from .services import ConfigurationChoice, choice_name, rubric_default_order


def is_editor_action(action: str) -> bool:
    return action in ("add", "sort") or action.startswith(("up-", "down-", "remove-"))


def initial_rubric() -> list[dict[str, Any]]:
    """A first rubric: the first generation model with the first demonstration set at 3 and 1 shots (if any)."""
    model = ModelEntry.objects.filter(task=ModelEntry.Task.GENERATION).order_by("pk").first()
    demonstrations = FewShotSet.objects.filter(kind=FewShotSet.Kind.DEMONSTRATION).order_by("pk").first()
    if model is None:
        return [{}, {}]
    if demonstrations is None:
        return [{"model": model.pk, "shots": 0}, {"model": model.pk, "shots": 0}]
    most = min(3, demonstrations.example_count or 3)
    return [
        {"model": model.pk, "shots": most, "demonstration_set": demonstrations.pk},
        {"model": model.pk, "shots": 1, "demonstration_set": demonstrations.pk},
    ]


def rubric_edit(action: str, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Apply one editor button: add (a copy of the last row), sort (rules of thumb), up-i, down-i, remove-i."""
    if action == "add":
        return [*rows, dict(rows[-1]) if rows else {}]
    if action == "sort":
        return _sorted_by_rules_of_thumb(rows)
    verb, _, position = action.partition("-")
    if not position.isdigit() or int(position) >= len(rows):
        return rows
    index = int(position)
    if verb == "remove":
        return rows[:index] + rows[index + 1 :]
    target = index - 1 if verb == "up" else index + 1 if verb == "down" else index
    if 0 <= target < len(rows):
        rows[index], rows[target] = rows[target], rows[index]
    return rows


def _sorted_by_rules_of_thumb(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    resolved = [(row, _resolve(row)) for row in rows]
    ordered = rubric_default_order([choice for _, choice in resolved if choice is not None])
    order = {id(choice): position for position, choice in enumerate(ordered)}
    complete = sorted(
        ((row, choice) for row, choice in resolved if choice is not None), key=lambda pair: order[id(pair[1])]
    )
    return [row for row, _ in complete] + [row for row, choice in resolved if choice is None]


def _resolve(row: dict[str, str]) -> ConfigurationChoice | None:
    """The row's model and demonstration set, or None when a field is missing or names nothing."""
    try:
        model = ModelEntry.objects.get(pk=int(row["model"]))
        shots = int(row["shots"])
        demonstrations = FewShotSet.objects.get(pk=int(row["demonstration_set"])) if row["demonstration_set"] else None
    except (ValueError, TypeError, KeyError, ModelEntry.DoesNotExist, FewShotSet.DoesNotExist):
        return None
    return ConfigurationChoice(model=model, shots=shots, demonstration_set=demonstrations)


def configuration_records(choices: list[ConfigurationChoice]) -> list[dict[str, Any]]:
    """The editor's entries as a library rubric stores them (JSON, best first): the configuration's name
    in the pipeline, and its model and demonstration set by name and id so the editor can open them again."""
    records: list[dict[str, Any]] = []
    for choice in choices:
        record: dict[str, Any] = {
            "name": choice_name(choice),
            "model": choice.model.name,
            "model_id": choice.model.pk,
            "shots": choice.shots,
        }
        if choice.demonstration_set is not None:
            record["demonstration_set"] = choice.demonstration_set.name
            record["demonstration_set_id"] = choice.demonstration_set.pk
        records.append(record)
    return records


def rows_from_records(records: list[Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """Editor rows for a stored rubric's configurations, and the records that name no registered model
    (written by hand or through the API as free text), which the page lists so none is lost unseen."""
    rows: list[dict[str, Any]] = []
    unmatched: list[Any] = []
    for record in records:
        model = _record_object(record, ModelEntry, "model")
        if model is None:
            unmatched.append(record)
            continue
        demonstrations = _record_object(record, FewShotSet, "demonstration_set")
        shots = record.get("shots", record.get("demonstrations", 0))
        row: dict[str, Any] = {"model": model.pk, "shots": shots if isinstance(shots, int) else 0}
        if demonstrations is not None:
            row["demonstration_set"] = demonstrations.pk
        rows.append(row)
    return rows, unmatched


def _record_object(record: Any, model_class: type[ModelEntry] | type[FewShotSet], key: str) -> Any:
    """The object a record names by `<key>_id`, else by its name under `key`; None when it names none."""
    if not isinstance(record, dict):
        return None
    by_id = record.get(f"{key}_id")
    if isinstance(by_id, int):
        found = model_class.objects.filter(pk=by_id).first()
        if found is not None:
            return found
    by_name = record.get(key)
    return model_class.objects.filter(name=by_name).first() if isinstance(by_name, str) and by_name else None

"""Reading a config dataclass from JSON: the one check every method's `from_dict` starts with."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pipelines.errors import InvalidConfigError


def known_fields(cls: type, data: Any, where: str) -> dict[str, Any]:
    """A copy of `data` once it is a JSON object whose keys are all fields of the dataclass `cls`.

    Why: a misspelt knob ("temprature") would otherwise be dropped in silence and the run would go
    ahead on the default; the message names the config (`where`) and every unknown field instead.
    """
    if not isinstance(data, dict):
        raise InvalidConfigError(f"{where} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - {field.name for field in fields(cls)}
    if unknown:
        raise InvalidConfigError(f"unknown {where} field(s): {', '.join(sorted(unknown))}")
    return dict(data)

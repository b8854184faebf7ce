"""Reading a config dataclass from JSON, and the checks every method's configs share: the one check
every `from_dict` starts with, and the seed's range."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pipelines.errors import InvalidConfigError

MAX_SEED = 2**32 - 1
"""The largest seed: what every backend's generator and `random.Random` accept alike."""


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


def check_seed(name: str, seed: int | None) -> None:
    """Seeds are empty (random) or between 0 and MAX_SEED; a refusal names the config field `name`."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidConfigError(f"{name} must be between 0 and {MAX_SEED}, got {seed}", field=name)

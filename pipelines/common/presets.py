"""One shape for every preset: a name, what it is for, and how it changes a config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pipelines.errors import InvalidConfigError

ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class Preset(Generic[ConfigT]):
    """A named set of settings for one method's config (e.g. "tiny-cpu-demo", "7b-lora-1gpu").

    `apply` returns a new config; it never changes the one it is given. The description is what
    the form shows beside the choice, so it says what the preset is for and what it gives up.
    """

    name: str
    description: str
    apply: Callable[[ConfigT], ConfigT]


def preset_named(presets: Sequence[Preset[Any]], name: str) -> Preset[Any]:
    """The preset called `name`, or a config error that lists the ones there are."""
    for preset in presets:
        if preset.name == name:
            return preset
    raise InvalidConfigError(
        f"unknown preset {name!r}; choose one of {', '.join(p.name for p in presets)}", field="preset"
    )


def preset_choices(presets: Sequence[Preset[Any]]) -> list[tuple[str, str]]:
    """(name, description) pairs for a form's choice field, in declaration order."""
    return [(preset.name, preset.description) for preset in presets]

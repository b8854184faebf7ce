"""Filters that show stored data to people: configs as indented JSON or YAML, summary keys as words.

`{{ run.config|readable_json }}` and `{{ run.config|readable_yaml }}` keep the keys in the order the
config holds them (the order its builder declared them where the database keeps it), never sorted;
`{{ "questions_kept"|key_words }}` reads "Questions kept".
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from django import template

register = template.Library()

# Words that read wrong when only the first letter of a key is capitalized.
UPPERCASE_WORDS = {"id", "ids", "sft", "dpo", "kto", "ipo", "llm", "lora", "rl", "kl", "gpu", "cpu", "url", "json"}


@register.filter
def key_words(key: Any) -> str:
    """A snake_case or kebab-case key as words: "questions_kept" -> "Questions kept", "sft_rows" -> "SFT rows".

    A flattened nested key reads part by part: "lengths/rows_cut" -> "Lengths: rows cut".
    """
    if "/" in str(key):
        head, *rest = [key_words(part) for part in str(key).split("/") if part] or [str(key)]
        return ": ".join([head, *(_lower_first(part) for part in rest)])
    words = [word for word in str(key).replace("-", "_").split("_") if word]
    if not words:
        return str(key)
    shown = [word.upper() if word.lower() in UPPERCASE_WORDS else word for word in words]
    if shown[0] == words[0]:
        shown[0] = shown[0][:1].upper() + shown[0][1:]
    return " ".join(shown)


def _lower_first(words: str) -> str:
    """ "Rows cut" -> "rows cut", but "SFT rows" stays: an acronym keeps its capitals."""
    first = words.split(" ", 1)[0]
    return words if first.isupper() and len(first) > 1 else words[:1].lower() + words[1:]


@register.filter
def readable_json(value: Any) -> str:
    """Indented JSON, keys in their stored order, non-ASCII text as itself; a value JSON cannot hold as its text."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


class _ReadableDumper(yaml.SafeDumper):
    """Safe YAML that writes anything it does not know (a date, a decimal) as its text instead of failing."""


_ReadableDumper.add_multi_representer(object, lambda dumper, value: dumper.represent_str(str(value)))


@register.filter
def readable_yaml(value: Any) -> str:
    """Block-style YAML, keys in their stored order, non-ASCII text as itself."""
    return yaml.dump(value, Dumper=_ReadableDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)

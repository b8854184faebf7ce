"""known_fields: the check every config's from_dict starts with."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipelines.common.config_fields import known_fields
from pipelines.errors import InvalidConfigError


@dataclass
class Knobs:
    temperature: float = 0.7
    top_p: float = 1.0


def test_a_dict_of_known_fields_comes_back_as_a_copy():
    data = {"temperature": 0.9}
    values = known_fields(Knobs, data, "sampling")
    assert values == data and values is not data


def test_misspelt_fields_are_named_with_the_config_they_were_found_in():
    with pytest.raises(InvalidConfigError, match=r"unknown sampling field\(s\): temprature, top_k$"):
        known_fields(Knobs, {"temprature": 0.9, "top_k": 5, "top_p": 0.9}, "sampling")


@pytest.mark.parametrize("data, kind", [([1, 2], "list"), ("0.7", "str"), (None, "NoneType")])
def test_anything_but_a_json_object_is_refused_by_type(data, kind):
    with pytest.raises(InvalidConfigError, match=f"sampling must be a JSON object, got {kind}"):
        known_fields(Knobs, data, "sampling")

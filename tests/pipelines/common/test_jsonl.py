"""The shared JSONL reader: rows as dicts, blank lines skipped, errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.common.jsonl import line_error, read_jsonl_rows, read_numbered_jsonl_rows
from pipelines.errors import InvalidInputError


def _write(tmp_path: Path, text: str, name: str = "rows.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_are_read_in_order_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"a": 1}\n\n   \n{"a": 2}\n')
    assert list(read_jsonl_rows(path)) == [{"a": 1}, {"a": 2}]


def test_numbered_rows_carry_the_line_they_came_from(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"a": 1}\n\n{"a": 2}\n')
    assert list(read_numbered_jsonl_rows(path)) == [(1, {"a": 1}), (3, {"a": 2})]


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"a": 1}\n{broken\n', name="prompts.jsonl")
    with pytest.raises(InvalidInputError, match=r"^prompts\.jsonl, line 2: not valid JSON \("):
        list(read_jsonl_rows(path))


def test_a_row_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"a": 1}\n[1, 2]\n', name="answers.jsonl")
    with pytest.raises(InvalidInputError, match=r"^answers\.jsonl, line 2: expected a JSON object, found list$"):
        list(read_jsonl_rows(path))


def test_a_missing_file_is_an_input_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="missing.jsonl: cannot open the file"):
        list(read_jsonl_rows(tmp_path / "missing.jsonl"))


def test_rows_stream_until_the_broken_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"a": 1}\nnot json\n')
    rows = read_jsonl_rows(path)
    assert next(rows) == {"a": 1}
    with pytest.raises(InvalidInputError):
        next(rows)


def test_line_error_words_a_callers_own_check_like_the_reader(tmp_path: Path) -> None:
    error = line_error(tmp_path / "prompts.jsonl", 4, "needs `prompt_id`")
    assert isinstance(error, InvalidInputError)
    assert str(error) == "prompts.jsonl, line 4: needs `prompt_id`"

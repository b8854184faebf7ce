"""Reading JSONL input files with errors that name the file and the line.

Prompt sets, answer files, datasets and pair files are JSONL that people write by hand or export
from elsewhere, so a broken line is common. Every reader goes through here so that the error says
where the problem is in one wording ("prompts.jsonl, line 3: not valid JSON (...)") and every
caller skips blank lines and refuses rows that are not JSON objects the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidInputError


def line_error(path: str | Path, line_number: int, problem: str) -> InvalidInputError:
    """The error for a bad row, worded like the reader's own, for checks a caller makes on a row's fields."""
    return InvalidInputError(f"{Path(path).name}, line {line_number}: {problem}")


def read_numbered_jsonl_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each non-blank line, streamed; for callers that report errors on a row's fields.

    Raises `InvalidInputError` when the file cannot be opened, a line is not valid JSON, or a line
    holds JSON that is not an object (a list, a number): a row is always a dict.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(f"{path}: cannot open the file ({error.strerror})") from None
    with handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise line_error(path, line_number, f"not valid JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise line_error(path, line_number, f"expected a JSON object, found {type(row).__name__}")
            yield line_number, row


def read_jsonl_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL file, streamed, blank lines skipped; errors as in `read_numbered_jsonl_rows`."""
    for _line_number, row in read_numbered_jsonl_rows(path):
        yield row

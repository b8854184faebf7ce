"""CSV cells a spreadsheet shows as text instead of running them as formulas (CSV injection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters with which Excel, LibreOffice or Google Sheets may treat a cell as a formula."""


def spreadsheet_safe(value: Any) -> Any:
    """`value`, with a leading apostrophe when it is text a spreadsheet would run as a formula.

    The apostrophe is OWASP's advice: spreadsheets hide it and show the rest as text. Only strings
    change; numbers (a negative score is a float, not text) are written as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_safe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every cell of a CSV row through `spreadsheet_safe`."""
    return {key: spreadsheet_safe(value) for key, value in row.items()}

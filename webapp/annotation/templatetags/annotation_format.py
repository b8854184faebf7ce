"""Formatting for the statistics page: proportions as percentages, missing figures as a dash."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 1) -> str:
    """0.8123 -> "81.2%"; None (undefined, e.g. no items yet) -> "—"."""
    if value is None:
        return "—"
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def statistic(value: float | None, digits: int = 3) -> str:
    """A kappa or alpha with fixed decimals; None (undefined) -> "—"."""
    if value is None:
        return "—"
    return f"{float(value):.{int(digits)}f}"

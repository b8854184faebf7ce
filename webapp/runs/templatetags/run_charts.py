"""Template filters for the metric charts: the charts' JSON for the script, numbers as the charts print them."""

from __future__ import annotations

from django import template

from webapp.runs.charts import Chart, charts_json, format_value

register = template.Library()


@register.filter(name="charts_json")
def charts_json_filter(charts: list[Chart]) -> str:
    """JSON for a `data-charts` attribute; autoescaping makes it safe inside the attribute's quotes."""
    return charts_json(charts)


@register.filter(name="chart_value")
def chart_value(value: float) -> str:
    """`2e-05` rather than floatformat's `0.0000`."""
    return format_value(value)

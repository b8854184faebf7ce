"""ALMoST (synthetic feedback): synthetic prompts, rubric-ranked responses, comparisons, a reward model, RMSP."""

from pipelines.almost.config import FILTERS, AlmostConfig, ResponseConfiguration, estimate_cost
from pipelines.almost.prompts import AlmostInputs, DemonstrationPrompt
from pipelines.almost.run import run_almost

__all__ = [
    "FILTERS",
    "AlmostConfig",
    "AlmostInputs",
    "DemonstrationPrompt",
    "ResponseConfiguration",
    "estimate_cost",
    "run_almost",
]

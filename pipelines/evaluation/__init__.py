"""Win-rate evaluation: candidates against a baseline, judged pairwise by an LLM in both orders, with honest statistics."""

from pipelines.evaluation.config import Contestant, EvaluationConfig, EvaluationInputs
from pipelines.evaluation.judge import JudgeConfig, parse_verdict
from pipelines.evaluation.run import run_evaluation

__all__ = ["Contestant", "EvaluationConfig", "EvaluationInputs", "JudgeConfig", "parse_verdict", "run_evaluation"]

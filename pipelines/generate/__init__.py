"""The "generate" job: answer a prompt set with one model, n samples per prompt."""
from pipelines.generate.config import GenerateConfig
from pipelines.generate.run import GenerateResult, run_generate

__all__ = ["GenerateConfig", "GenerateResult", "run_generate"]

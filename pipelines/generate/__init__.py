"""The "generate" job: answer a prompt set with one model, n samples per prompt."""
from pipelines.generate.config import GenerateConfig, GenerateInputs
from pipelines.generate.run import run_generate

__all__ = ["GenerateConfig", "GenerateInputs", "run_generate"]

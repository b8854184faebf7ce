"""The stages an ALMoST run reports, in order (the run page's whole-run progress).

Prompt generation, one response stage per configuration (in rank order), the comparisons, the
reward model's training (under "rm · "), when enabled RMSP's sampling and scoring, and then the SFT
policy ("sft · "), RL ("rl · ") and the policies' held-out evaluation.
"""

from __future__ import annotations

from pipelines.common.progress_plan import PlannedStage
from pipelines.training.stages import rl_stages, trainer_stages

from .config import AlmostConfig


def almost_stages(config: AlmostConfig) -> list[PlannedStage]:
    stages = [PlannedStage("pg · prompts", weight=5.0, label="prompt generation")]
    stages += [
        PlannedStage(f"rg · {configuration.name}", weight=5.0, label=f"responses of {configuration.name}")
        for configuration in config.configurations
    ]
    stages += [PlannedStage("cs · comparisons", weight=0.5, label="comparisons"), *trainer_stages("rm · ")]
    if config.rmsp.enabled:
        stages += [
            PlannedStage("rmsp · sample", weight=5.0, prefix=True, label="RMSP sampling"),
            PlannedStage("rmsp · score", weight=2.0, label="RMSP scoring"),
        ]
    if config.policy.sft_enabled:
        stages += [PlannedStage("sft · tokenize", weight=0.5, label="SFT tokenize"), *trainer_stages("sft · ")]
    if config.policy.rl_enabled:
        stages += rl_stages("rl · ")
    if config.policy.sft_enabled:
        stages.append(PlannedStage("policy evaluation", weight=2.0, label="base, SFT and RL on held-out prompts"))
    return stages

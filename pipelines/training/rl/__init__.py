"""RL from a reward model (ALMoST's RLSF stage, and a training kind of its own): PPO, RLOO, GRPO.

`config.py` is light (the web process validates with it); the rest imports torch when a run starts.
The entry point is `run.run_rl`.
"""

from pipelines.training.rl.config import RL_ALGORITHMS, PPOSettings, RLConfig

__all__ = ["RL_ALGORITHMS", "PPOSettings", "RLConfig"]

"""A LoRA model seen without its adapter: the frozen weights it was made from, with no second copy.

Why: PPO holds four models (policy, reference, reward model, value model). With LoRA, the reference
is the policy's base (the policy as it starts) and the value model starts from the reward model, so
both frozen models are already in memory under the trained adapters. Reading them through the
adapters switched off saves two full copies: on the bundled 135M model in float32, 1.1 GB of the
RL stage's memory. PEFT's `disable_adapter()` also switches a trained copy of a head (the value
model's score head, `modules_to_save`) back to the original, so the value model with its adapter off
scores exactly as the reward model it was loaded from, in the run's dtype (a reward model loaded on
its own is read in float32; in a bfloat16 run on a GPU the scores are bfloat16's). TRL's trainers do
the same for their reference when given a PEFT model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class AdapterOff:
    """Calls `model` (a PEFT model) with its adapters disabled, and stands for that frozen model.

    Has what the callers use of a model: calling it, `config`, `parameters()`, and `eval`/`train`/
    `training`, which leave the wrapped model's own mode alone (it is trained elsewhere).
    """

    training = False

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)

    @property
    def config(self) -> Any:
        return self.model.config

    def parameters(self) -> Iterator[Any]:
        return self.model.parameters()

    def eval(self) -> AdapterOff:
        return self

    def train(self, mode: bool = True) -> AdapterOff:
        return self

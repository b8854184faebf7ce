"""Held-out figures of a policy as RL goes: reward (mean, spread), KL to the reference, response length,
and a few sample responses, written beside the checkpoints and sent to the run page. Imports torch.

Why our own evaluation rather than TRL's: PPO (ours) and RLOO/GRPO (TRL's) must be measured one way,
and the base and SFT policies too, so the run's "mean reward of base / SFT / RL" compares like with like.

Measured per held-out prompt, one response sampled at the rollouts' temperature with a fixed seed:
- reward: the reward model's score (the penalty for an unended response included when set);
- KL: KL(pi || pi_ref) of each response, the exact KL between the policy's and the reference's
  next-token distributions summed over the response's positions (at the sampling temperature),
  averaged over prompts. The trainers' own `objective/kl` (PPO) and `kl` (RLOO/GRPO) are sampled
  estimates on the training batch and can dip below zero; this one cannot;
- length: response tokens (EOS included), and how many were cut at `max_new_tokens`.
"""

from __future__ import annotations

import statistics
from typing import Any

from pipelines.common.progress import Progress
from pipelines.common.store import RunStore
from pipelines.training.examples import Messages
from pipelines.training.rl.config import RLConfig
from pipelines.training.rl.files import CURVE_FILE, SAMPLES_DIR, read_curve
from pipelines.training.rl.rewards import RewardFunction
from pipelines.training.rl.sampling import response_kl, sample_responses

EVAL_SEED = 1234
"""The held-out samples' seed: every evaluation draws with it, so two checkpoints differ by the policy alone."""


class HeldOutEvaluator:
    """Evaluates a policy on the held-out prompts; `evaluate(model, step)` records and returns the figures."""

    def __init__(
        self,
        *,
        config: RLConfig,
        tokenizer: Any,
        prompt_ids: list[list[int]],
        prompts: list[Messages],
        reward: RewardFunction,
        reference: Any | None,
        store: RunStore | None,
        progress: Progress,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.prompt_ids = prompt_ids
        self.prompts = prompts
        self.reward = reward
        self.reference = reference
        self.store = store
        self.progress = progress

    def evaluate(self, model: Any, step: int, *, record: bool = True) -> dict[str, Any]:
        """The policy's held-out figures at `step`; with `record`, appended to the curve and sent as metrics."""
        if not self.prompt_ids:
            return {}
        config = self.config
        samples = sample_responses(
            model,
            self.tokenizer,
            self.prompt_ids,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            batch_size=config.training.per_device_batch_size,
            seed=EVAL_SEED,
        )
        rewards = self.reward.score(self.prompts, [s.text for s in samples], [s.ended for s in samples])
        lengths = [len(sample.response_ids) for sample in samples]
        figures: dict[str, Any] = {
            "step": step,
            "reward_mean": round(statistics.fmean(rewards), 5),
            "reward_std": round(statistics.pstdev(rewards), 5),
            "length_mean": round(statistics.fmean(lengths), 2),
            "cut_at_max_tokens": sum(1 for sample in samples if not sample.ended),
            "prompts": len(samples),
        }
        if self.reference is not None:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            kls = response_kl(
                model, self.reference, samples, temperature=config.temperature,
                batch_size=config.training.per_device_batch_size, pad_token_id=pad,
            )
            figures["kl"] = round(statistics.fmean(kls), 5)
        if record:
            self._record(figures, samples, rewards)
        return figures

    def _record(self, figures: dict[str, Any], samples: list[Any], rewards: list[float]) -> None:
        step = figures["step"]
        if self.store is not None:
            _append(self.store, figures)
            shown = [
                {
                    "prompt": self.prompts[index][-1]["content"],
                    "response": samples[index].text,
                    "reward": round(rewards[index], 4),
                    "tokens": len(samples[index].response_ids),
                    "ended": samples[index].ended,
                }
                for index in range(min(self.config.samples_per_eval, len(samples)))
            ]
            self.store.write_json({"step": step, "samples": shown}, SAMPLES_DIR, f"step-{step:07d}.json")
        self.progress.metrics({"step": step, **{f"held_out/{key}": value for key, value in figures.items() if key != "step"}})
        self.progress.log(
            f"held-out at step {step}: reward {figures['reward_mean']:.3f} ± {figures['reward_std']:.3f}, "
            f"length {figures['length_mean']:.1f} tokens"
            + (f", KL {figures['kl']:.4f}" if "kl" in figures else "")
        )


def _append(store: RunStore, row: dict[str, Any]) -> None:
    """One row more on the curve, the file rewritten atomically (a crash leaves the old curve whole); a
    resumed run that measures a step again replaces that step's row."""
    rows = [earlier for earlier in read_curve(store) if earlier["step"] != row["step"]]
    store.write_jsonl(sorted([*rows, row], key=lambda entry: entry["step"]), CURVE_FILE)


"""The run kinds of this app, declared once (registered in apps.py)."""

from __future__ import annotations

from pipelines.almost.config import AlmostConfig
from pipelines.almost.stages import almost_stages
from webapp.runs.registry import RunClone, RunKind, RunSection

from . import run_page
from .clone import almost_form_data

ALMOST = RunKind(
    kind="almost",
    label="ALMoST: synthetic comparisons",
    queue="gpu",
    job="workers.kinds.almost.prepare",
    section=RunSection(template=run_page.TEMPLATE, context=run_page.context),
    form="webapp.almost.forms.AlmostRunForm",
    config_build="webapp.almost.forms.almost_run_config",
    clone=RunClone(
        form_url="almost:new",
        paths={
            "prompt_max_tokens": "almost.prompt_generation.max_tokens",
            "in_context": "almost.prompt_generation.in_context",
            "reward_eval_fraction": "almost.reward.eval_fraction",
            "reward_prompt_format": "almost.reward.training.prompt_format",
            "rmsp_enabled": "almost.rmsp.enabled",
            "constrained_output": "almost.prompt_generation.constrained_output",
            "rmsp_n": "almost.rmsp.n",
            "policy_sft": "almost.policy.sft_enabled",
            "policy_rl": "almost.policy.rl_enabled",
            "rl_algorithm": "almost.policy.rl.algorithm",
            "rl_held_out_prompts": "almost.policy.rl.held_out_prompts",
        },
        form_data=almost_form_data,
    ),
    stages=lambda config: almost_stages(AlmostConfig.from_dict(config["almost"])),
)

"""ALMoST runs: snapshot the seeds and demonstration prompts once; the rubric's models, the reward base and
the policy base (the reward base unless the run names `policy_model_id`) by spec.

The pipeline publishes each step's numbers, the comparisons and the reward model as they finish,
so the generic worker registers them at once; a resumed attempt reads the same snapshot.
"""

from __future__ import annotations

from typing import Any

from pipelines.almost import AlmostConfig, AlmostInputs, DemonstrationPrompt, run_almost
from pipelines.almost.prompts import INPUTS_FILE
from pipelines.almost.run import POLICY_BASE_ROLE, REWARD_BASE_ROLE
from pipelines.common.store import RunStore
from webapp.library.models import FewShotSet, SeedPromptSet
from webapp.registry.models import ModelEntry
from webapp.runs.models import PipelineRun
from workers.runner import PreparedJob


def prepare(run: PipelineRun, store: RunStore) -> PreparedJob:
    if not store.exists(INPUTS_FILE):
        store.write_json(_library_texts(run), INPUTS_FILE)
    entries = {label: ModelEntry.objects.get(pk=pk) for label, pk in run.config["model_ids"].items()}
    reward_base = ModelEntry.objects.get(pk=run.config["reward_model_id"])
    policy_id = run.config.get("policy_model_id")
    policy_base = ModelEntry.objects.get(pk=policy_id) if policy_id else reward_base
    return PreparedJob(
        pipeline=run_almost,
        config=AlmostConfig.from_dict(run.config["almost"]),
        inputs=AlmostInputs.from_texts(
            store.read_json(INPUTS_FILE),
            models={label: entry.backend_spec() for label, entry in entries.items()},
            reward_model=reward_base.backend_spec(),
            policy_model=policy_base.backend_spec(),
        ),
        models={REWARD_BASE_ROLE: reward_base, POLICY_BASE_ROLE: policy_base},
    )


def _library_texts(run: PipelineRun) -> dict[str, Any]:
    """The seeds (with their instruction line) and the demonstration prompts, as the library holds them now."""
    seed_set = SeedPromptSet.objects.get(pk=run.config["seed_prompt_set_id"])
    demonstrations = {}
    for label, pk in run.config.get("demonstration_set_ids", {}).items():
        few_shot_set = FewShotSet.objects.get(pk=pk)
        dialogues = list(few_shot_set.examples.order_by("position").values_list("context", flat=True))
        demonstrations[label] = DemonstrationPrompt(preamble=few_shot_set.preamble, dialogues=dialogues)
    return AlmostInputs(
        seed_prompts=list(seed_set.prompts.order_by("position").values_list("text", flat=True)),
        instruction=seed_set.instruction,
        demonstrations=demonstrations,
    ).texts()

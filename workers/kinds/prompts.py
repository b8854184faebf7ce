"""The prompt snapshot a run answers: the library's prompt set, copied into the run directory once."""

from __future__ import annotations

from pipelines.common.prompts import write_prompts
from pipelines.common.store import RunStore
from webapp.library.models import SeedPromptSet


def snapshot_prompt_set(*, prompt_set_id: int, store: RunStore) -> None:
    """Copy the prompt set into the run directory, once: a resume answers exactly the same prompts
    even if the library changed in between."""
    prompt_set = SeedPromptSet.objects.get(pk=prompt_set_id)
    write_prompts(
        store,
        (
            {"prompt_id": f"p{prompt.position:06d}", "prompt": prompt.text}
            for prompt in prompt_set.prompts.order_by("position").iterator()
        ),
    )

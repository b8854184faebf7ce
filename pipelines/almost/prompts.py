"""ALMoST's raw-text prompts (no chat template, as the original) and the inputs they are built from.

Prompt generation continues `{instruction}\\n\\nQuery: s1\\n...Query: sk\\nQuery:`; a response is the
continuation of `{preamble}\\n\\n-----\\n\\n{dialogue 1}...\\n\\n-----\\n\\nHuman: {prompt}\\n\\nAssistant: `
(with the original's trailing space after "Assistant:").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.errors import InvalidInputError
from pipelines.llm.loader import BackendSpec

QUERY_PREFIX = "Query:"
DIALOGUE_SEPARATOR = "\n\n-----"
HUMAN_TURN = "Human:"
ASSISTANT_TURN = "Assistant:"
RESPONSE_STOPS = ("\n\nHuman:", DIALOGUE_SEPARATOR)
"""Generation stops where the model starts the user's next turn or a new dialogue."""
_QUERY_SPLIT = re.compile(r"query:", re.IGNORECASE)
INPUTS_FILE = "inputs.json"
"""The snapshot of the run's texts (`AlmostInputs.texts()`), written once when the run first starts."""


@dataclass(frozen=True)
class DemonstrationPrompt:
    """A preamble and demonstration dialogues ("Human: ...\\n\\nAssistant: ..."), as in HHH_prompt.txt."""

    preamble: str
    dialogues: list[str]


@dataclass(frozen=True)
class AlmostInputs:
    """What a run starts from: the models it loads (by spec) and the texts it imitates.

    The texts (seeds, instruction line, demonstration prompts) are snapshotted into the run directory
    once (`INPUTS_FILE`, written by whoever starts the run), so a resume sees the same inputs even if
    the library changed; the model specs come from the registry at every attempt.
    """

    seed_prompts: list[str]
    instruction: str = ""
    """The seed file's optional first line, e.g. "### Instruction: Please generate initial query ..."."""
    demonstrations: dict[str, DemonstrationPrompt] = field(default_factory=dict)
    """Demonstration prompts by label (the label names configurations: "hhh", "faithful")."""
    models: dict[str, BackendSpec] = field(default_factory=dict)
    """The rubric's models by label (`ResponseConfiguration.model`): the backend spec each label loads."""
    reward_model: BackendSpec = field(default_factory=dict)
    """The reward model's base, as a backend spec (its weights are trained, not served)."""
    policy_model: BackendSpec = field(default_factory=dict)
    """The SFT policy's base (empty: the reward model's base, as the paper trains both from LLaMA-7B)."""

    def __post_init__(self) -> None:
        cleaned = [prompt.strip() for prompt in self.seed_prompts if prompt and prompt.strip()]
        if not cleaned:
            raise InvalidInputError("the seed prompt set holds no prompts; prompt generation needs examples to imitate")
        object.__setattr__(self, "seed_prompts", cleaned)
        for label, prompt in self.demonstrations.items():
            if not prompt.dialogues:
                raise InvalidInputError(f"demonstration prompt {label!r} holds no dialogues")

    def texts(self) -> dict[str, Any]:
        """The part snapshotted into `INPUTS_FILE`: seeds, instruction and demonstration prompts."""
        return {
            "seed_prompts": list(self.seed_prompts),
            "instruction": self.instruction,
            "demonstrations": {label: asdict(prompt) for label, prompt in self.demonstrations.items()},
        }

    @classmethod
    def from_texts(
        cls,
        data: dict[str, Any],
        *,
        models: dict[str, BackendSpec],
        reward_model: BackendSpec,
        policy_model: BackendSpec | None = None,
    ) -> AlmostInputs:
        """The inputs of a run from its snapshot (`texts()`) and the model specs of this attempt."""
        demonstrations = {
            label: DemonstrationPrompt(preamble=value.get("preamble", ""), dialogues=list(value.get("dialogues", [])))
            for label, value in (data.get("demonstrations") or {}).items()
        }
        return cls(
            seed_prompts=list(data.get("seed_prompts") or []),
            instruction=data.get("instruction", ""),
            demonstrations=demonstrations,
            models=dict(models),
            reward_model=dict(reward_model),
            policy_model=dict(policy_model or {}),
        )


def prompt_generation_text(instruction: str, examples: list[str]) -> str:
    """The few-shot text a model continues to write one new query."""
    lines = "".join(f"{QUERY_PREFIX} {example}\n" for example in examples)
    head = f"{instruction.strip()}\n\n" if instruction.strip() else ""
    return f"{head}{lines}{QUERY_PREFIX}"


def extract_query(continuation: str) -> str:
    """The new query: the continuation's first line, cut at any further "Query:".

    The original scans for the first line that *starts* with "Query:", which skips the line that
    directly follows the prompt's trailing "Query:" and so keeps the model's second query; we keep
    the first, the one the prompt asked for.
    """
    first_line = continuation.lstrip(" ").split("\n", 1)[0]
    return _QUERY_SPLIT.split(first_line, 1)[0].strip()


def response_prompt_text(demonstration: DemonstrationPrompt | None, shots: int, user_prompt: str) -> str:
    """The static prompt (preamble + `shots` dialogues) followed by the user's turn and "Assistant: ".

    The trailing space is the original's (`form_prompt` ends `"\\n\\nAssistant: "`): the model's
    continuation starts with the response's first word, not with a space.
    """
    parts: list[str] = []
    if demonstration is not None:
        parts.append(demonstration.preamble.strip())
        parts.extend(f"{DIALOGUE_SEPARATOR}\n\n{dialogue.strip()}" for dialogue in demonstration.dialogues[:shots])
        parts.append(f"{DIALOGUE_SEPARATOR}\n\n")
    return "".join(parts) + f"{HUMAN_TURN} {user_prompt.strip()}\n\n{ASSISTANT_TURN} "


def clean_response(text: str) -> str:
    """The original's post-processing: cut at a new dialogue or turn, strip newlines and spaces."""
    return text.split(DIALOGUE_SEPARATOR)[0].split(ASSISTANT_TURN)[0].split(HUMAN_TURN)[0].strip("\n ")

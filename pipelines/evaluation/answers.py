"""Where a contestant's answers come from: the answer cache, the model (answering what is missing), or a file.

Reading an answers file is shared with the web side: the evaluation form checks an artifact's
columns against `PROMPT_FIELDS` / `ANSWER_FIELDS`, and its prompt import reads prompts with
`prompt_of`, so a file the form accepts is a file the run can read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.common.jsonl import line_error, read_numbered_jsonl_rows
from pipelines.common.progress import Progress
from pipelines.errors import InvalidInputError
from pipelines.evaluation.cache import AnswerCache
from pipelines.evaluation.config import Contestant, EvaluationConfig
from pipelines.llm.loader import BackendLoader
from pipelines.llm.types import Conversation

PROMPT_FIELDS = ("prompt", "instruction", "question", "query")
ANSWER_FIELDS = ("response", "output", "answer", "completion", "responses")


def contestant_answers(
    contestant: Contestant,
    prompts: list[dict[str, str]],
    config: EvaluationConfig,
    cache: AnswerCache,
    backends: BackendLoader,
    progress: Progress,
) -> tuple[list[dict[str, Any]], int]:
    """Each prompt's answer from this contestant, and how many had to be generated now.

    A model is loaded only when some answer is not in the cache; each answer goes into the cache
    as its batch finishes, so a crashed run keeps what it paid for.
    """
    if contestant.kind == "answers":
        progress.stage(f"answers · {contestant.label}", total=len(prompts))
        rows = answers_from_file(contestant, prompts)
        progress.advance(len(prompts))
        return rows, 0

    model_key, decoding_key = contestant.model_key, contestant.decoding_key
    found = {row["prompt_id"]: cache.get(model_key, decoding_key, row["prompt"]) for row in prompts}
    missing = [row for row in prompts if found[row["prompt_id"]] is None]
    progress.stage(f"answers · {contestant.label}", total=len(prompts), done=len(prompts) - len(missing))
    if len(missing) < len(prompts):
        progress.log(
            f"{contestant.label}: {len(prompts) - len(missing)} of {len(prompts)} answers reused from the cache"
        )
    if missing:
        backend = backends.load(contestant.backend_spec)
        for start in range(0, len(missing), config.answer_batch_size):
            progress.check_cancelled()
            batch = missing[start : start + config.answer_batch_size]
            conversations = [_conversation(contestant.system_prompt, row["prompt"]) for row in batch]
            outputs = backend.chat(conversations, contestant.sampling)
            for row, completions in zip(batch, outputs, strict=True):
                completion = completions[0]
                entry = {
                    "answer": completion.text,
                    "completion_tokens": completion.completion_tokens,
                    "finish_reason": completion.finish_reason,
                    "generated_by": contestant.label,
                }
                cache.put(model_key, decoding_key, row["prompt"], entry)
                found[row["prompt_id"]] = {**entry, "fresh": True}
            progress.advance(len(batch))
    rows = []
    for row in prompts:
        entry = found[row["prompt_id"]] or {}
        rows.append(
            {
                "prompt_id": row["prompt_id"],
                "prompt": row["prompt"],
                "answer": entry.get("answer", ""),
                "completion_tokens": entry.get("completion_tokens"),
                "finish_reason": entry.get("finish_reason"),
                "from_cache": not entry.get("fresh", False),
                "model_key": model_key,
                "decoding_key": decoding_key,
            }
        )
    return rows, len(missing)


def _conversation(system_prompt: str, prompt: str) -> Conversation:
    conversation: Conversation = []
    if system_prompt:
        conversation.append({"role": "system", "content": system_prompt})
    conversation.append({"role": "user", "content": prompt})
    return conversation


def answers_from_file(contestant: Contestant, prompts: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Match an answers file's rows to the prompts by prompt text; every prompt needs an answer."""
    path = Path(contestant.answers_path)
    if not path.is_file():
        raise InvalidInputError(f"answers of {contestant.label}: file {path} does not exist")
    by_prompt: dict[str, str] = {}
    for line_number, row in read_numbered_jsonl_rows(path):
        prompt, answer = prompt_of(row), answer_of(row)
        if prompt is None or answer is None:
            raise line_error(
                path,
                line_number,
                f"needs a prompt field ({', '.join(PROMPT_FIELDS)}) and an answer field ({', '.join(ANSWER_FIELDS)})",
            )
        by_prompt.setdefault(prompt.strip(), answer)
    missing = [row["prompt"] for row in prompts if row["prompt"].strip() not in by_prompt]
    if missing:
        raise InvalidInputError(
            f"answers of {contestant.label} ({path.name}): {len(missing)} of {len(prompts)} prompts have no answer, "
            f"e.g. {missing[0][:80]!r}; evaluate on the prompts the answers were made for"
        )
    return [
        {
            "prompt_id": row["prompt_id"],
            "prompt": row["prompt"],
            "answer": by_prompt[row["prompt"].strip()],
            "completion_tokens": None,
            "finish_reason": None,
            "from_cache": False,
            "model_key": "",
            "decoding_key": "",
        }
        for row in prompts
    ]


def prompt_of(row: dict[str, Any]) -> str | None:
    """A row's prompt: a text field, or the last user message of a message list (AFT's `query`)."""
    for name in PROMPT_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, list):
            users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
            if users and isinstance(users[-1], str):
                return users[-1]
    return None


def answer_of(row: dict[str, Any]) -> str | None:
    """A row's answer: a text field, or the first of a list of responses (a generate artifact)."""
    for name in ANSWER_FIELDS:
        value = row.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and isinstance(value[0], str):
            return value[0]
    return None

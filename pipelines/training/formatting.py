"""How a training example becomes text and token ids, before any length limit applies.

Two formats (`TrainingArgs.prompt_format`): the model's chat template, or ALMoST's raw
`prompt\n\nAssistant: reply<eos>` for base models without one. The format a model was trained in is
written beside it (`TRAINING_FORMAT_FILE`) so a scorer formats its inputs alike.
"""

from __future__ import annotations

from typing import Any

from pipelines.training.examples import Messages

RAW_ASSISTANT_SEPARATOR = "\n\nAssistant:"
"""What `raw_assistant` puts between the prompt and the reply (ALMoST: `prompt\n\nAssistant: reply<eos>`)."""

TRAINING_FORMAT_FILE = "refinery_training_format.json"
"""Written beside every saved model: how its examples were formatted, so a scorer formats alike."""

_RAW_ROLE_NAMES = {"system": "System", "user": "Human", "assistant": "Assistant"}


def _raw_prompt_text(messages: Messages) -> str:
    """ALMoST's raw format: the prompt as plain text, then "\\n\\nAssistant:" (the reply follows after a space).

    A single user turn is its text alone, as ALMoST's comparisons hold the bare query; a conversation
    names each turn ("Human: ...", "Assistant: ...") in the same style.
    """
    if len(messages) == 1 and messages[0]["role"] == "user":
        body = messages[0]["content"]
    else:
        body = "\n\n".join(f"{_RAW_ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)
    return body + RAW_ASSISTANT_SEPARATOR


def prompt_text(tokenizer: Any, messages: Messages, prompt_format: str) -> str:
    """The text a prompt becomes, ending where the reply starts."""
    if prompt_format == "raw_assistant":
        return _raw_prompt_text(messages)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _full_text(tokenizer: Any, messages: Messages, completion: str, prompt_format: str) -> str:
    if prompt_format == "raw_assistant":
        return f"{_raw_prompt_text(messages)} {completion}"
    return tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": completion}], tokenize=False, add_generation_prompt=False
    )


def encode_whole(
    tokenizer: Any, prompts: list[Messages], completions: list[str], prompt_format: str
) -> list[tuple[list[int], list[int]]]:
    """(prompt_ids, completion_ids) per example, nothing cut.

    With a chat template the completion's tokens are what the template adds after the generation
    prompt (the reply and its end-of-turn marker); in the raw format they are " reply" and EOS.
    """
    prompt_texts = [prompt_text(tokenizer, prompt, prompt_format) for prompt in prompts]
    full_texts = [
        _full_text(tokenizer, prompt, completion, prompt_format)
        for prompt, completion in zip(prompts, completions, strict=True)
    ]
    prompt_ids_list = tokenizer(prompt_texts, add_special_tokens=False)["input_ids"]
    full_ids_list = tokenizer(full_texts, add_special_tokens=False)["input_ids"]
    encoded = []
    for prompt_ids, full_ids, completion in zip(prompt_ids_list, full_ids_list, completions, strict=True):
        if full_ids[: len(prompt_ids)] == prompt_ids:
            completion_ids = list(full_ids[len(prompt_ids) :])
        else:  # a template whose reply rendering changes the prompt's last tokens
            lead = " " if prompt_format == "raw_assistant" else ""
            completion_ids = list(tokenizer(lead + completion, add_special_tokens=False)["input_ids"])
            if prompt_format == "chat_template" and tokenizer.eos_token_id is not None:
                completion_ids.append(tokenizer.eos_token_id)
        if prompt_format == "raw_assistant" and tokenizer.eos_token_id is not None:
            completion_ids.append(tokenizer.eos_token_id)
        encoded.append((list(prompt_ids), completion_ids))
    return encoded


def encode_prompt_completions(
    tokenizer: Any,
    prompts: list[Messages],
    completions: list[str],
    *,
    max_length: int,
    max_prompt_length: int,
    prompt_format: str = "chat_template",
) -> list[tuple[list[int], list[int]]]:
    """(prompt_ids, completion_ids) per example, cut to fit (for scoring, where every row needs a score).

    A prompt longer than `max_prompt_length` keeps its last tokens; the completion is then cut to fit
    `max_length`. Training goes through `fit_prompt_completions`, which counts what it cuts.
    """
    encoded = []
    for prompt_ids, completion_ids in encode_whole(tokenizer, prompts, completions, prompt_format):
        prompt_ids = prompt_ids[-max_prompt_length:]
        encoded.append((prompt_ids, completion_ids[: max_length - len(prompt_ids)]))
    return encoded

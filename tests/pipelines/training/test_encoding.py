"""Examples to the token rows each trainer trains on: prompt tokens masked, the raw format, packing, pairs."""

from __future__ import annotations

import pytest

from pipelines.training.batching import collate_sft
from pipelines.training.encoding import IGNORE_INDEX, encode_preference_with_report, encode_sft_with_report, pack_sft
from pipelines.training.examples import (
    PreferencePair,
    PromptCompletion,
    load_preference_pairs,
    load_sft_examples,
)


def test_sft_labels_cover_the_reply_only(tokenizer, sft_dataset):
    examples = load_sft_examples(sft_dataset)
    [row], _report = encode_sft_with_report(tokenizer, examples[:1], max_length=128, max_prompt_length=96)
    reply_start = row["labels"].index(next(label for label in row["labels"] if label != IGNORE_INDEX))
    assert all(label == IGNORE_INDEX for label in row["labels"][:reply_start])
    assert row["labels"][reply_start:] == row["input_ids"][reply_start:]
    prompt_text = tokenizer.decode(row["input_ids"][:reply_start])
    reply_text = tokenizer.decode(row["input_ids"][reply_start:])
    assert prompt_text.endswith("<|im_start|>assistant\n") and "What is 2 + 2?" in prompt_text
    assert reply_text.startswith("2 + 2 is 4.<|im_end|>")


@pytest.fixture(scope="module")
def base_tokenizer_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model's tokenizer with its chat template removed: a base model's tokenizer."""
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("base-tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(directory)
    (directory / "chat_template.jinja").unlink(missing_ok=True)
    return directory


def test_raw_assistant_format_is_almosts_prompt_assistant_reply_eos_without_bos(base_tokenizer_dir):
    from pipelines.errors import InvalidConfigError
    from pipelines.training.models import load_tokenizer

    with pytest.raises(InvalidConfigError, match="no chat template; set prompt_format to raw_assistant"):
        load_tokenizer(base_tokenizer_dir)
    tokenizer = load_tokenizer(base_tokenizer_dir, "raw_assistant")
    assert tokenizer.chat_template is None
    example = PromptCompletion(prompt=[{"role": "user", "content": "What is 2 + 2?"}], completion="It is 4.")
    [row], _report = encode_sft_with_report(
        tokenizer, [example], max_length=64, max_prompt_length=48, prompt_format="raw_assistant"
    )
    expected = tokenizer("What is 2 + 2?\n\nAssistant: It is 4.", add_special_tokens=False)["input_ids"]
    assert row["input_ids"] == [*expected, tokenizer.eos_token_id]
    reply_start = row["labels"].index(next(label for label in row["labels"] if label != IGNORE_INDEX))
    assert tokenizer.decode(row["input_ids"][:reply_start]) == "What is 2 + 2?\n\nAssistant:"
    pair = PreferencePair(prompt=example.prompt, chosen="It is 4.", rejected="It is 5.")
    [feature], _report = encode_preference_with_report(
        tokenizer, [pair], max_length=64, max_prompt_length=48, prompt_format="raw_assistant"
    )
    assert feature["chosen_ids"][-1] == tokenizer.eos_token_id


def test_loss_on_all_tokens_labels_the_prompt_too(tokenizer, sft_dataset):
    examples = load_sft_examples(sft_dataset)[:1]
    [row], _report = encode_sft_with_report(
        tokenizer, examples, max_length=128, max_prompt_length=96, completion_only_loss=False
    )
    assert row["labels"] == row["input_ids"]


def test_packing_keeps_examples_whole_and_restarts_positions(tokenizer, sft_dataset):
    rows, _report = encode_sft_with_report(
        tokenizer, load_sft_examples(sft_dataset), max_length=128, max_prompt_length=96
    )
    packed = pack_sft(rows, max_length=128)
    assert len(packed) < len(rows)
    assert sum(len(row["input_ids"]) for row in packed) == sum(len(row["input_ids"]) for row in rows)
    assert all(len(row["input_ids"]) <= 128 for row in packed)
    first = packed[0]
    restarts = [i for i, position in enumerate(first["position_ids"]) if position == 0]
    assert restarts[0] == 0 and len(restarts) >= 2
    batch = collate_sft(packed, tokenizer.pad_token_id)
    assert "attention_mask" not in batch and batch["position_ids"].shape == batch["input_ids"].shape


def test_preference_rows_share_one_prompt(tokenizer, preference_dataset):
    [feature], _report = encode_preference_with_report(
        tokenizer, load_preference_pairs(preference_dataset)[:1], max_length=64, max_prompt_length=48
    )
    assert tokenizer.decode(feature["chosen_ids"]).startswith("2 + 2 is 4.")
    assert tokenizer.decode(feature["rejected_ids"]).startswith("2 + 2 is 7.")

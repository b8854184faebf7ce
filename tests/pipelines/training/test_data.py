"""Dataset artifacts to token rows: formats accepted, prompt tokens masked, packing."""

from __future__ import annotations

import pytest

from pipelines.errors import InvalidInputError
from pipelines.training.data import (
    IGNORE_INDEX,
    collate_sft,
    encode_preference,
    encode_sft,
    load_preference_pairs,
    load_sft_examples,
    pack_sft,
    read_rows,
)

from .conftest import write_jsonl


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from pipelines.training.common import load_tokenizer

    return load_tokenizer(tiny_model_dir)


def test_sft_accepts_messages_prompt_response_and_question_answer(tmp_path):
    messages = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}],
    )
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"context": "Cats purr.", "question": "Do cats purr?", "answer": "Yes."}])
    [chat] = load_sft_examples(messages)
    assert chat.prompt == [{"role": "user", "content": "Hi"}] and chat.completion == "Hello!"
    [without_context] = load_sft_examples(qa)
    [with_context] = load_sft_examples(qa, include_context=True)
    assert without_context.prompt[0]["content"] == "Do cats purr?"
    assert with_context.prompt[0]["content"] == "Cats purr.\n\nDo cats purr?"


def test_parquet_artifacts_load_like_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "sft.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "a", "response": "b"}]), path)
    assert read_rows(path) == [{"prompt": "a", "response": "b"}]


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prompt": "a", "response": "b"}\n[1, 2]\n')
    with pytest.raises(InvalidInputError, match="line 2 of broken.jsonl: expected a JSON object"):
        read_rows(path)


def test_spin_rows_become_real_chosen_generated_rejected(spin_dataset):
    pair = load_preference_pairs(spin_dataset)[0]
    assert pair.prompt == [{"role": "user", "content": "What is 2 + 2?"}]
    assert (pair.chosen, pair.rejected) == ("2 + 2 is 4.", "2 + 2 is 7.")


def test_sft_labels_cover_the_reply_only(tokenizer, sft_dataset):
    examples = load_sft_examples(sft_dataset)
    [row] = encode_sft(tokenizer, examples[:1], max_length=128, max_prompt_length=96)
    reply_start = row["labels"].index(next(label for label in row["labels"] if label != IGNORE_INDEX))
    assert all(label == IGNORE_INDEX for label in row["labels"][:reply_start])
    assert row["labels"][reply_start:] == row["input_ids"][reply_start:]
    prompt_text = tokenizer.decode(row["input_ids"][:reply_start])
    reply_text = tokenizer.decode(row["input_ids"][reply_start:])
    assert prompt_text.endswith("<|im_start|>assistant\n") and "What is 2 + 2?" in prompt_text
    assert reply_text.startswith("2 + 2 is 4.<|im_end|>")


def test_long_prompts_keep_their_end_and_replies_fit_max_length(tokenizer):
    from pipelines.training.data import PromptCompletion

    long = PromptCompletion(prompt=[{"role": "user", "content": "word " * 200 + "QUESTION?"}], completion="yes " * 100)
    [row] = encode_sft(tokenizer, [long], max_length=64, max_prompt_length=40)
    assert len(row["input_ids"]) == 64
    assert sum(label == IGNORE_INDEX for label in row["labels"]) == 40
    assert "QUESTION?" in tokenizer.decode(row["input_ids"][:40])


def test_packing_keeps_examples_whole_and_restarts_positions(tokenizer, sft_dataset):
    rows = encode_sft(tokenizer, load_sft_examples(sft_dataset), max_length=128, max_prompt_length=96)
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
    [feature] = encode_preference(
        tokenizer, load_preference_pairs(preference_dataset)[:1], max_length=64, max_prompt_length=48
    )
    assert tokenizer.decode(feature["chosen_ids"]).startswith("2 + 2 is 4.")
    assert tokenizer.decode(feature["rejected_ids"]).startswith("2 + 2 is 7.")

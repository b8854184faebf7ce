"""Dataset artifacts to training examples: the layouts and file formats accepted, and their errors."""

from __future__ import annotations

import pytest

from pipelines.errors import InvalidInputError
from pipelines.training.examples import (
    load_preference_pairs,
    load_sft_examples,
    read_rows,
)

from .conftest import write_jsonl


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
    with pytest.raises(InvalidInputError, match="broken.jsonl, line 2: expected a JSON object"):
        read_rows(path)


def test_spin_rows_become_real_chosen_generated_rejected(spin_dataset):
    pair = load_preference_pairs(spin_dataset)[0]
    assert pair.prompt == [{"role": "user", "content": "What is 2 + 2?"}]
    assert (pair.chosen, pair.rejected) == ("2 + 2 is 4.", "2 + 2 is 7.")


def test_the_drafts_numbering_matches_afts_prompt():
    from pipelines.aft.prompts import numbered_responses
    from pipelines.training.examples import numbered_proposals

    drafts = ["a", "b\nc", " d "]
    assert numbered_proposals(drafts) == numbered_responses(drafts)

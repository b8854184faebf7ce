"""Dataset artifacts to token rows: formats accepted, prompt tokens masked, packing."""

from __future__ import annotations

import pytest

from pipelines.errors import InvalidInputError
from pipelines.training.batching import collate_sft
from pipelines.training.encoding import IGNORE_INDEX, encode_preference_with_report, encode_sft_with_report, pack_sft
from pipelines.training.examples import (
    PreferencePair,
    PromptCompletion,
    load_preference_pairs,
    load_sft_examples,
    read_rows,
)

from .conftest import write_jsonl


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from pipelines.training.models import load_tokenizer

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
    with pytest.raises(InvalidInputError, match="broken.jsonl, line 2: expected a JSON object"):
        read_rows(path)


def test_spin_rows_become_real_chosen_generated_rejected(spin_dataset):
    pair = load_preference_pairs(spin_dataset)[0]
    assert pair.prompt == [{"role": "user", "content": "What is 2 + 2?"}]
    assert (pair.chosen, pair.rejected) == ("2 + 2 is 4.", "2 + 2 is 7.")


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


def test_long_prompts_keep_their_end_and_replies_fit_max_length(tokenizer):
    long = PromptCompletion(prompt=[{"role": "user", "content": "word " * 200 + "QUESTION?"}], completion="yes " * 100)
    [row], _report = encode_sft_with_report(tokenizer, [long], max_length=64, max_prompt_length=40)
    assert len(row["input_ids"]) == 64
    assert sum(label == IGNORE_INDEX for label in row["labels"]) == 40
    assert "QUESTION?" in tokenizer.decode(row["input_ids"][:40])


def _aggregation_rows(drafts_per_row: int = 5, words_per_draft: int = 70) -> list[dict]:
    from pipelines.aft.data import aggregation_row

    rows = []
    for number in range(3):
        drafts = [
            f"DRAFT{index}START " + " ".join(f"point{index}x{word}" for word in range(words_per_draft)) + f" END{index}"
            for index in range(drafts_per_row)
        ]
        example = {"prompt_id": f"g{number}", "prompt": f"What is the question number {number}?", "proposals": drafts}
        rows.append(aggregation_row(example, f"The synthesis {number}.", "aggregator", "test"))
    return rows


def test_an_over_long_prompt_is_counted_and_reported_with_lengths_that_fit(tokenizer, tmp_path):
    examples = load_sft_examples(write_jsonl(tmp_path / "agg.jsonl", _aggregation_rows()))
    features, report = encode_sft_with_report(tokenizer, examples, max_length=512, max_prompt_length=384)
    summary = report.summary()
    assert summary["rows"] == 3 and summary["rows_over_max_prompt_length"] == 3
    assert summary["rows_cut"] == 3 and summary["aggregation_prompts_with_drafts_cut"] == 3
    assert summary["longest_prompt_tokens"] > 384
    proposed_prompt, proposed_total = report.proposed_lengths()
    assert proposed_prompt >= summary["longest_prompt_tokens"] and proposed_total >= summary["longest_example_tokens"]
    assert "3 over them (rows 1, 2, 3" in report.message()
    # With the proposed lengths nothing is cut, and every prompt is whole.
    whole, whole_report = encode_sft_with_report(
        tokenizer, examples, max_length=proposed_total, max_prompt_length=proposed_prompt, over_length="refuse"
    )
    assert whole_report.rows_over == 0 and whole_report.rows_cut == 0 and len(whole) == 3


def test_a_cut_aggregation_prompt_keeps_its_header_instruction_and_question(tokenizer, tmp_path):
    from pipelines.aft.prompts import AGG_TEMPLATE

    examples = load_sft_examples(write_jsonl(tmp_path / "agg.jsonl", _aggregation_rows()))
    assert examples[0].proposals, "an AFT aggregation row is recognised by its drafts"
    features, _report = encode_sft_with_report(tokenizer, examples, max_length=512, max_prompt_length=384)
    for number, row in enumerate(features):
        prompt_length = sum(label == IGNORE_INDEX for label in row["labels"])
        assert prompt_length <= 384
        prompt = tokenizer.decode(row["input_ids"][:prompt_length])
        assert prompt.startswith("<|im_start|>system\n" + AGG_TEMPLATE)
        assert f"What is the question number {number}?" in prompt
        assert prompt.endswith("<|im_start|>assistant\n")
        for index in range(5):  # every draft keeps its number and its beginning; the ends are what went
            assert f"{index + 1}. DRAFT{index}START" in prompt
            assert f" END{index}" not in prompt
        assert tokenizer.decode(row["input_ids"][prompt_length:]).startswith(f"The synthesis {number}.")


def test_the_drafts_numbering_matches_afts_prompt():
    from pipelines.aft.prompts import numbered_responses
    from pipelines.training.examples import numbered_proposals

    drafts = ["a", "b\nc", " d "]
    assert numbered_proposals(drafts) == numbered_responses(drafts)


def test_refuse_names_the_rows_and_the_lengths_that_would_fit(tokenizer, tmp_path):
    rows = [{"prompt": "short?", "response": "ok"}] * 2 + [{"prompt": "long " * 300, "response": "ok"}]
    examples = load_sft_examples(write_jsonl(tmp_path / "mixed.jsonl", rows))
    with pytest.raises(InvalidInputError, match=r"1 of 3 rows are longer than the limits \(rows 3; longest prompt"):
        encode_sft_with_report(tokenizer, examples, max_length=128, max_prompt_length=96, over_length="refuse")
    features, report = encode_sft_with_report(
        tokenizer, examples, max_length=128, max_prompt_length=96, over_length="drop"
    )
    assert len(features) == 2 and report.rows_dropped == 1 and report.rows_cut == 0


def test_a_cut_pair_is_counted_and_a_refused_one_names_its_row(tokenizer):
    pairs = [
        PreferencePair(prompt=[{"role": "user", "content": "2+2?"}], chosen="4.", rejected="5."),
        PreferencePair(prompt=[{"role": "user", "content": "Say it."}], chosen="yes " * 200, rejected="no"),
    ]
    features, report = encode_preference_with_report(tokenizer, pairs, max_length=64, max_prompt_length=48)
    assert report.summary()["rows_over_max_length"] == 1 and report.rows_cut == 1
    assert all(len(f["prompt_ids"]) + len(f["chosen_ids"]) <= 64 for f in features)
    with pytest.raises(InvalidInputError, match=r"rows 2;"):
        encode_preference_with_report(tokenizer, pairs, max_length=64, max_prompt_length=48, over_length="refuse")


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


def test_an_aggregation_row_cuts_drafts_before_its_target(tokenizer, tmp_path):
    rows = _aggregation_rows(drafts_per_row=3, words_per_draft=30)
    for row in rows:
        row["messages"][-1]["content"] = row["target"] = "TARGET " + "insight " * 150 + "FINAL"
    examples = load_sft_examples(write_jsonl(tmp_path / "agg.jsonl", rows))
    features, report = encode_sft_with_report(tokenizer, examples, max_length=512, max_prompt_length=384)
    assert report.rows_cut == 3 and report.proposals_cut == 3
    for row in features:
        assert len(row["input_ids"]) <= 512
        assert tokenizer.decode(row["input_ids"]).rstrip().endswith("FINAL<|im_end|>")

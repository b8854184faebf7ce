"""Length limits on encoded examples: rows over them counted, cut (aggregation prompts in their drafts), dropped or refused."""

from __future__ import annotations

import pytest

from pipelines.errors import InvalidInputError
from pipelines.training.encoding import IGNORE_INDEX, encode_preference_with_report, encode_sft_with_report
from pipelines.training.examples import (
    PreferencePair,
    PromptCompletion,
    load_sft_examples,
)

from .conftest import write_jsonl


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

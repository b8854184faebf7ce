"""Token lengths of a training dataset, measured before a run is queued (the training form's preview).

The web process never imports torch, and transformers' AutoTokenizer does; the model's fast tokenizer
(`tokenizer.json`) loads without it, and renders the chat template alike. The worker measures every row
again with the tokenizer it trains with, so the preview is a forecast and the run summary the record.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.examples import preference_pairs, sft_examples
from pipelines.training.length_limits import LengthReport, fit_prompt_completions

PREVIEW_ROW_LIMIT = 2000
"""The preview measures at most this many rows (the first ones); the job measures them all."""


def load_fast_tokenizer(model_dir: str | Path) -> Any:
    """The model's fast tokenizer without importing torch; InvalidConfigError when it has none."""
    from transformers import PreTrainedTokenizerFast

    model_dir = Path(model_dir)
    if not (model_dir / "tokenizer.json").is_file():
        raise InvalidConfigError(f"{model_dir} has no tokenizer.json to measure token lengths with")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_first_rows(path: str | Path, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The first `limit` rows of a JSONL or parquet dataset, and whether there were more."""
    from pipelines.training.examples import read_rows

    path = Path(path)
    if path.suffix == ".parquet":
        rows = read_rows(path)
        return rows[:limit], len(rows) > limit
    rows: list[dict[str, Any]] = []
    try:
        for row in read_jsonl_rows(path):
            if len(rows) == limit:
                return rows, True
            rows.append(row)
    except RecursionError as error:  # the web process reads this: a pathological row is a refusal, not a 500
        raise InvalidInputError(f"{path.name}: a row is nested too deeply to read") from error
    if not rows:
        raise InvalidInputError(f"{path.name} holds no rows")
    return rows, False


def measure_dataset(
    *,
    trainer: str,
    model_dir: str | Path,
    dataset_path: str | Path,
    training: TrainingArgs,
    include_context: bool = False,
    limit: int = PREVIEW_ROW_LIMIT,
) -> tuple[LengthReport, bool]:
    """The length report of the dataset's first `limit` rows under `training`'s limits, and whether the
    dataset has more rows than were measured. Raises InvalidConfigError or InvalidInputError with the reason
    when it cannot measure (no fast tokenizer, no chat template for chat_template, malformed rows)."""
    path = Path(dataset_path)
    report, more = _measure_cached(
        trainer,
        str(Path(model_dir).resolve()),
        str(path.resolve()),
        path.stat().st_mtime_ns,
        training.prompt_format,
        include_context,
        training.max_length,
        training.max_prompt_length,
        limit,
    )
    report = replace(report, over_length=training.over_length, over_rows=list(report.over_rows))
    if training.over_length == "drop":
        report.rows_cut, report.proposals_cut, report.rows_dropped = 0, 0, report.rows_over
    elif training.over_length == "refuse":
        report.rows_cut, report.proposals_cut, report.rows_dropped = 0, 0, 0
    return report, more


@lru_cache(maxsize=32)
def _measure_cached(
    trainer: str,
    model_dir: str,
    dataset_path: str,
    _modified_ns: int,
    prompt_format: str,
    include_context: bool,
    max_length: int,
    max_prompt_length: int,
    limit: int,
) -> tuple[LengthReport, bool]:
    tokenizer = load_fast_tokenizer(model_dir)
    if prompt_format == "chat_template" and tokenizer.chat_template is None:
        raise InvalidConfigError(
            "the model has no chat template; set prompt_format to raw_assistant to train it on "
            "`prompt\\n\\nAssistant: reply<eos>` text (ALMoST's format for base models)"
        )
    rows, more = read_first_rows(dataset_path, limit)
    if trainer == "sft":
        examples = sft_examples(rows, include_context=include_context)
        prompts = [example.prompt for example in examples]
        replies = [[example.completion] for example in examples]
        proposals = [example.proposals for example in examples]
    else:
        pairs = preference_pairs(rows)
        prompts = [pair.prompt for pair in pairs]
        replies = [[pair.chosen, pair.rejected] for pair in pairs]
        proposals = None
    _fitted, report = fit_prompt_completions(
        tokenizer,
        prompts,
        replies,
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        over_length="cut",
        prompt_format=prompt_format,
        proposals=proposals,
    )
    return report, more

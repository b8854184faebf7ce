"""Aggregation training data: prompts with several responses -> SFT rows that teach a model to aggregate.

Each example is the inference format (`[system: aggregator instruction + numbered proposals, user:
query] -> assistant: target`), written in the training layer's `messages` layout.

Input layouts (detected from the columns every row has):

- `prompt` + `proposals` (an AFT aggregations artifact: its drafts) or `prompt` + `responses` (a
  generate artifact), optionally with `scores` (one number per response, higher is better);
- preference rows (`prompt`/`chosen`/`rejected`, conversational chosen/rejected, or SPIN's
  real/generated), grouped by prompt: every distinct reply of a prompt is a response, ranked by
  wins minus losses over that prompt's pairs (a single pair: chosen above rejected);
- UltraFeedback's `completions` list (`{"response", "overall_score"}`) with `instruction` or `prompt`.

Target rules (see docs/methods/aft.md):

- `aggregator`, the paper's: a model (ideally stronger than the one trained) reads the proposals
  with the aggregator prompt and writes the target; all of the group's responses are proposals.
- `best_response`: the highest-ranked response is the target; the others are the proposals.

Run directory: `groups.jsonl` (the prepared examples, written once), `data-batches/batch-<i>.jsonl`
(the finished rows of each batch) and `aggregation_sft.jsonl` / `.parquet`.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.aft.config import AggregationDataConfig, AggregationDataInputs
from pipelines.aft.prompts import PROPOSER_SYSTEM, aggregator_conversation
from pipelines.common.batches import batch_file_name, run_in_batches
from pipelines.common.progress import Progress
from pipelines.common.result import PipelineResult
from pipelines.common.store import RunStore
from pipelines.common.tables import export_batch_files
from pipelines.errors import InvalidConfigError, InvalidInputError
from pipelines.llm.loader import BackendLoader
from pipelines.llm.types import LLMBackend, SamplingParams

GROUPS_FILE = "groups.jsonl"
GROUP_COUNTS_FILE = "groups-summary.json"
OUTPUT_STEM = "aggregation_sft"


@dataclass
class ResponseGroup:
    """One prompt and its distinct responses; `scores` rank them (higher is better) when known."""

    prompt: str
    responses: list[str]
    scores: list[float] | None = None
    source_rows: list[int] = field(default_factory=list)


# -- reading the source ----------------------------------------------------------------------------


def response_groups(rows: list[dict[str, Any]]) -> tuple[list[ResponseGroup], str]:
    """Group a dataset's rows into prompts with several responses; also returns the layout's name."""
    if not rows:
        raise InvalidInputError("the dataset holds no rows")
    columns = set(rows[0])
    for row in rows[1:]:
        columns &= set(row)
    if "completions" in columns and ({"instruction"} & columns or {"prompt"} & columns):
        return _completions_groups(rows), "completions"
    for list_column in ("proposals", "responses"):
        if {"prompt", list_column} <= columns:
            return _list_groups(rows, list_column), list_column
    if {"chosen", "rejected"} <= columns or {"real", "generated"} <= columns:
        return _preference_groups(rows), "preference"
    found = ", ".join(sorted(columns)) or "none"
    raise InvalidInputError(
        "aggregation data needs several responses per prompt: `prompt` + `responses` (a generate artifact), "
        f"`prompt` + `proposals`, prompt/chosen/rejected pairs, or UltraFeedback `completions` (found: {found})"
    )


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise InvalidInputError(f"{where}: expected text, found {type(value).__name__}")


def _list_groups(rows: list[dict[str, Any]], column: str) -> list[ResponseGroup]:
    groups = []
    for number, row in enumerate(rows, start=1):
        prompt = _prompt_text(row["prompt"], f"row {number} `prompt`")
        responses = row[column]
        if not isinstance(responses, list) or not all(isinstance(item, str) for item in responses):
            raise InvalidInputError(f"row {number} `{column}`: expected a list of texts")
        scores = row.get("scores")
        if scores is not None and not _numbers(scores, len(responses)):
            raise InvalidInputError(f"row {number} `scores`: expected one number per response ({len(responses)})")
        groups.append(_distinct(prompt, responses, scores, [number]))
    return groups


def _numbers(values: Any, count: int) -> bool:
    return (
        isinstance(values, list)
        and len(values) == count
        and all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
    )


def _completions_groups(rows: list[dict[str, Any]]) -> list[ResponseGroup]:
    groups = []
    for number, row in enumerate(rows, start=1):
        prompt = _prompt_text(row.get("instruction", row.get("prompt")), f"row {number} `instruction`")
        completions = row["completions"]
        if not isinstance(completions, list):
            raise InvalidInputError(f"row {number} `completions`: expected a list of {{response, overall_score}}")
        responses, scores = [], []
        for position, completion in enumerate(completions, start=1):
            where = f"row {number} `completions`[{position}]"
            if not isinstance(completion, dict) or "response" not in completion:
                raise InvalidInputError(f"{where}: expected an object with a `response` field")
            responses.append(_text(completion["response"], f"{where}.response"))
            score = next((completion[key] for key in ("overall_score", "score", "rating") if key in completion), None)
            scores.append(score)
        known = all(isinstance(score, int | float) and not isinstance(score, bool) for score in scores)
        groups.append(_distinct(prompt, responses, [float(s) for s in scores] if known else None, [number]))
    return groups


def _preference_groups(rows: list[dict[str, Any]]) -> list[ResponseGroup]:
    """Pairs grouped by prompt; each response scores wins minus losses over its prompt's pairs."""
    from pipelines.training.examples import preference_pairs

    pairs = preference_pairs(rows)
    by_prompt: dict[str, ResponseGroup] = {}
    for number, pair in enumerate(pairs, start=1):
        users = [message["content"] for message in pair.prompt if message["role"] == "user"]
        if not users:
            raise InvalidInputError(f"row {number}: the prompt has no user message")
        prompt = users[-1]
        group = by_prompt.setdefault(prompt, ResponseGroup(prompt=prompt, responses=[], scores=[]))
        assert group.scores is not None
        for text, points in ((pair.chosen, 1.0), (pair.rejected, -1.0)):
            if text in group.responses:
                group.scores[group.responses.index(text)] += points
            else:
                group.responses.append(text)
                group.scores.append(points)
        group.source_rows.append(number)
    return list(by_prompt.values())


def _prompt_text(value: Any, where: str) -> str:
    """A prompt as text, or a conversation's last user message."""
    if isinstance(value, list):
        users = [m.get("content") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        if users and isinstance(users[-1], str):
            return users[-1]
        raise InvalidInputError(f"{where}: a conversation needs a user message")
    text = _text(value, where)
    if not text.strip():
        raise InvalidInputError(f"{where}: empty prompt")
    return text


def _distinct(prompt: str, responses: list[str], scores: list[float] | None, source_rows: list[int]) -> ResponseGroup:
    """Drop repeated and blank responses (a repeat of the target would leak it into the proposals)."""
    kept: list[str] = []
    kept_scores: list[float] = []
    for position, response in enumerate(responses):
        if not response.strip() or response in kept:
            continue
        kept.append(response)
        if scores is not None:
            kept_scores.append(float(scores[position]))
    return ResponseGroup(prompt=prompt, responses=kept, scores=kept_scores if scores is not None else None, source_rows=source_rows)


# -- choosing proposals and targets ----------------------------------------------------------------


def prepare_examples(
    groups: list[ResponseGroup], config: AggregationDataConfig
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Per usable group: its proposals (shuffled, capped) and, for `best_response`, its target."""
    examples: list[dict[str, Any]] = []
    counts = {"groups": len(groups), "skipped_too_few_proposals": 0}
    if config.target_rule == "best_response" and groups and all(group.scores is None for group in groups):
        raise InvalidConfigError(
            "target_rule best_response needs ranked responses (a `scores` list, chosen/rejected pairs or rated "
            "completions); this dataset has none: use target_rule aggregator"
        )
    for index, group in enumerate(groups):
        if config.max_examples and len(examples) >= config.max_examples:
            break
        rng = random.Random(config.seed + index)
        target = None
        proposals = list(group.responses)
        if config.target_rule == "best_response":
            if group.scores is None:
                raise InvalidInputError(f"row {group.source_rows[0]}: best_response needs a score for every response")
            best = max(range(len(proposals)), key=lambda position: (group.scores[position], -position))  # type: ignore[index]
            target = proposals[best]
            if not config.include_target_in_proposals:
                proposals.pop(best)
        if config.shuffle_proposals:
            rng.shuffle(proposals)
        proposals = proposals[: config.max_proposals]
        if len(proposals) < config.min_proposals:
            counts["skipped_too_few_proposals"] += 1
            continue
        examples.append(
            {
                "prompt_id": f"g{index:06d}",
                "prompt": group.prompt,
                "proposals": proposals,
                "target": target,
                "source_rows": group.source_rows,
            }
        )
    counts["examples"] = len(examples)
    return examples, counts


def aggregation_row(example: dict[str, Any], target: str, rule: str, target_source: str) -> dict[str, Any]:
    """One SFT row in the inference format; `messages` is what the training layer reads."""
    conversation = aggregator_conversation(example["prompt"], example["proposals"])
    return {
        "messages": [*conversation, {"role": "assistant", "content": target}],
        "prompt_id": example["prompt_id"],
        "prompt": example["prompt"],
        "proposals": example["proposals"],
        "target": target,
        "target_rule": rule,
        "target_source": target_source,
        "row_kind": "aggregation",
    }


def plain_row(example: dict[str, Any], target: str, rule: str, target_source: str) -> dict[str, Any]:
    """The proposer's format, so a model trained on the mix still proposes well."""
    return {
        "messages": [
            {"role": "system", "content": PROPOSER_SYSTEM},
            {"role": "user", "content": example["prompt"]},
            {"role": "assistant", "content": target},
        ],
        "prompt_id": example["prompt_id"],
        "prompt": example["prompt"],
        "proposals": [],
        "target": target,
        "target_rule": rule,
        "target_source": target_source,
        "row_kind": "plain",
    }


# -- the run ---------------------------------------------------------------------------------------


def run_aggregation_data(
    config: AggregationDataConfig,
    inputs: AggregationDataInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
) -> PipelineResult:
    """Build (or resume building) the aggregation SFT dataset from the rows at `inputs.source_path`.

    Only the `aggregator` rule loads a model (`inputs.model`), and only when some batch is still
    missing. The artifact is "aggregation sft"; the summary counts its rows and the prompt groups
    read, used and skipped (and why).
    """
    from pipelines.training.examples import read_rows

    if config.needs_model and inputs.model is None:
        raise InvalidConfigError("target_rule aggregator needs a model to write the aggregations (model_id)")
    if not store.exists(GROUPS_FILE):
        progress.stage("group responses", total=1)
        groups, layout = response_groups(read_rows(inputs.source_path))
        examples, counts = prepare_examples(groups, config)
        if not examples:
            raise InvalidInputError(
                f"no usable prompt: {counts['groups']} prompt groups ({layout} layout), "
                f"{counts['skipped_too_few_proposals']} with fewer than {config.min_proposals} proposal(s)"
            )
        store.write_json({**counts, "layout": layout}, GROUP_COUNTS_FILE)
        store.write_jsonl(examples, GROUPS_FILE)
        progress.advance(1)
    counts = store.read_json(GROUP_COUNTS_FILE)
    examples = list(store.read_jsonl(GROUPS_FILE))
    backend: LLMBackend | None = None

    def write_targets(index: int, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal backend
        if config.needs_model and backend is None:
            assert inputs.model is not None
            backend = backends.load(inputs.model)
        return _batch_rows(config, batch, index, backend)

    batched = run_in_batches(
        examples,
        config.batch_size,
        write_targets,
        store=store,
        progress=progress,
        stage="write targets",
        batch_name=lambda index: batch_file_name(index, folder="data-batches"),
    )

    table = export_batch_files(store, batched.batch_names, OUTPUT_STEM, progress)
    kinds = [row["row_kind"] for name in batched.batch_names for row in store.read_jsonl(name)]
    aggregation_rows = kinds.count("aggregation")
    counts = {**counts, "skipped_empty_target": len(examples) - aggregation_rows}
    return PipelineResult(
        artifacts=[table.artifact("aggregation sft", "sft")],
        summary={
            "rows": table.row_count,
            "aggregation_rows": aggregation_rows,
            "plain_rows": kinds.count("plain"),
            **{f"groups · {key}": value for key, value in counts.items()},
            "batches_generated_this_attempt": batched.batches_generated,
        },
    )


def _batch_rows(
    config: AggregationDataConfig, batch: list[dict[str, Any]], batch_index: int, backend: LLMBackend | None
) -> list[dict[str, Any]]:
    if config.target_rule == "best_response":
        targets = [(example["target"], "best-ranked response of the group") for example in batch]
    else:
        assert backend is not None
        sampling = SamplingParams.from_dict({**config.aggregator.to_dict(), "seed": config.seed + batch_index})
        outputs = backend.chat([aggregator_conversation(e["prompt"], e["proposals"]) for e in batch], sampling)
        targets = [(completions[0].text.strip(), f"aggregation by {backend.name}") for completions in outputs]
    rows = []
    for example, (target, source) in zip(batch, targets, strict=True):
        if not target.strip():
            continue  # an empty aggregation would teach the model to answer nothing
        rows.append(aggregation_row(example, target, config.target_rule, source))
        if config.plain_rows:
            rows.append(plain_row(example, target, config.target_rule, source))
    return rows


def describe_layouts() -> Sequence[str]:
    """The input layouts, for the form's help text."""
    return (
        "a generate artifact (prompt + responses)",
        "an AFT aggregations artifact (prompt + proposals)",
        "preference pairs (prompt, chosen, rejected), grouped by prompt",
        "UltraFeedback-style completions with overall_score",
    )

"""From a dataset artifact (JSONL or parquet) to the token rows each trainer needs.

Rows are normalised first into plain records (a prompt as chat messages, completions as text),
then tokenized with the model's chat template (or ALMoST's raw `prompt\n\nAssistant: reply<eos>` for
base models); labels are -100 on prompt tokens so the loss covers completions only. Every row is
measured against the run's length limits first, and nothing over them is cut or dropped without
being counted (`LengthReport`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.common.jsonl import read_jsonl_rows
from pipelines.errors import InvalidInputError
from pipelines.training.config import RAW_ASSISTANT_SEPARATOR
from pipelines.training.layouts import validate_dataset_fields

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (prompt and padding)."""

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptCompletion:
    """One SFT example: the conversation so far, and the assistant reply to learn."""

    prompt: Messages
    completion: str
    proposals: tuple[str, ...] = ()
    """An AFT aggregation row's drafts (the end of its system message): what a forced cut shortens."""


@dataclass(frozen=True)
class PreferencePair:
    """One comparison: a prompt and a better (chosen) and worse (rejected) assistant reply."""

    prompt: Messages
    chosen: str
    rejected: str


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a `.jsonl`/`.json` lines file or a `.parquet` file, as dicts."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such dataset file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as parquet

        return parquet.read_table(path).to_pylist()
    rows = list(read_jsonl_rows(path))
    if not rows:
        raise InvalidInputError(f"{path.name} holds no rows")
    return rows


def _columns(rows: list[dict[str, Any]]) -> set[str]:
    # Fields present in every row: a field missing from some rows is as good as missing.
    columns = set(rows[0])
    for row in rows[1:]:
        columns &= set(row)
    return columns


def _as_messages(value: Any, where: str) -> Messages:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in value):
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]
    raise InvalidInputError(f"{where}: expected text or a list of {{role, content}} messages")


def _split_last_assistant(value: Any, where: str) -> tuple[Messages, str]:
    """A conversation ending in an assistant turn -> (the turns before it, its text)."""
    messages = _as_messages(value, where)
    if not messages or messages[-1]["role"] != "assistant":
        raise InvalidInputError(f"{where}: the conversation must end with an assistant message")
    return messages[:-1], messages[-1]["content"]


def _completion_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    return _split_last_assistant(value, where)[1]


def sft_examples(rows: list[dict[str, Any]], *, include_context: bool = False) -> list[PromptCompletion]:
    """Normalise SFT rows: `messages`, `prompt`/`response` (or `completion`), or `question`/`answer` (+ `context`)."""
    layout = validate_dataset_fields("sft", _columns(rows))
    examples = []
    for index, row in enumerate(rows, start=1):
        where = f"row {index}"
        proposals: tuple[str, ...] = ()
        if layout == ("messages",):
            prompt, completion = _split_last_assistant(row["messages"], f"{where} `messages`")
            if not prompt:
                raise InvalidInputError(f"{where} `messages`: needs a user turn before the assistant reply")
            proposals = _aggregation_proposals(row, prompt)
        elif layout == ("question", "answer"):
            question = str(row["question"])
            context = row.get("context")
            if include_context and context:
                question = f"{context}\n\n{question}"
            prompt, completion = [{"role": "user", "content": question}], str(row["answer"])
        else:
            prompt = _as_messages(row["prompt"], f"{where} `prompt`")
            completion = _completion_text(row[layout[1]], f"{where} `{layout[1]}`")
        examples.append(PromptCompletion(prompt=prompt, completion=completion, proposals=proposals))
    return examples


def preference_pairs(rows: list[dict[str, Any]]) -> list[PreferencePair]:
    """Normalise comparisons: `prompt`/`chosen`/`rejected`, SPIN's `real`/`generated`, or conversational chosen/rejected."""
    layout = validate_dataset_fields("preference", _columns(rows))
    pairs = []
    for index, row in enumerate(rows, start=1):
        where = f"row {index}"
        if layout == ("prompt", "chosen", "rejected"):
            prompt = _as_messages(row["prompt"], f"{where} `prompt`")
            chosen = _completion_text(row["chosen"], f"{where} `chosen`")
            rejected = _completion_text(row["rejected"], f"{where} `rejected`")
        else:
            # SPIN: real = chosen, generated = rejected; both are [user, assistant] conversations.
            better, worse = ("real", "generated") if layout == ("real", "generated") else ("chosen", "rejected")
            prompt, chosen = _split_last_assistant(row[better], f"{where} `{better}`")
            worse_prompt, rejected = _split_last_assistant(row[worse], f"{where} `{worse}`")
            if worse_prompt != prompt:
                raise InvalidInputError(f"{where}: `{better}` and `{worse}` must share the same turns before the reply")
        pairs.append(PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected))
    return pairs


def load_sft_examples(path: str | Path, *, include_context: bool = False) -> list[PromptCompletion]:
    return sft_examples(read_rows(path), include_context=include_context)


def load_preference_pairs(path: str | Path) -> list[PreferencePair]:
    return preference_pairs(read_rows(path))


def split_held_out(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held_out): a seeded shuffle, then the last `fraction` (at least one item) held out."""
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    import random

    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held = max(1, round(len(items) * fraction))
    held = min(held, len(items) - 1)
    return [items[i] for i in sorted(order[:-held])], [items[i] for i in sorted(order[-held:])]


# --- tokenization -------------------------------------------------------------------------------

MAX_LISTED_ROWS = 10
"""How many row numbers an over-length message or report lists."""
_RAW_ROLE_NAMES = {"system": "System", "user": "Human", "assistant": "Assistant"}


def _numbered(proposals: tuple[str, ...] | list[str]) -> str:
    # The aggregator's drafts as pipelines/aft/prompts.py numbers them ("1. ...\n2. ..."); a test checks
    # the two agree. Not imported: importing pipelines.aft loads the whole AFT package.
    return "\n".join(f"{index}. {proposal}" for index, proposal in enumerate(proposals, start=1))


def _aggregation_proposals(row: dict[str, Any], prompt: Messages) -> tuple[str, ...]:
    """The drafts of an AFT aggregation row whose system message ends with them, else ()."""
    proposals = row.get("proposals")
    if row.get("row_kind") != "aggregation" or not isinstance(proposals, list) or not proposals:
        return ()
    if not all(isinstance(proposal, str) for proposal in proposals):
        return ()
    if not prompt or prompt[0]["role"] != "system" or not prompt[0]["content"].endswith(_numbered(proposals)):
        return ()
    return tuple(proposals)


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


def _encode_whole(
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


@dataclass
class LengthReport:
    """A dataset's token lengths against a run's limits, and what became of the rows over them.

    Built by one pass over the encoded rows before training; its `summary()` goes into the run's
    result (and so the run page), and the training form shows the same figures as a preview.
    """

    max_length: int
    max_prompt_length: int
    over_length: str
    rows: int = 0
    longest_prompt: int = 0
    longest_example: int = 0
    prompts_over: int = 0
    examples_over: int = 0
    over_rows: list[int] = field(default_factory=list)
    rows_over: int = 0
    rows_cut: int = 0
    rows_dropped: int = 0
    proposals_cut: int = 0
    measured_rows: int = 0
    """Rows measured (the form's preview measures the first ones of a large dataset only)."""

    def add(self, row_number: int, prompt_length: int, completion_lengths: list[int]) -> bool:
        """Count one row; True when it is over a limit."""
        self.rows += 1
        self.measured_rows += 1
        example_length = prompt_length + max(completion_lengths, default=0)
        self.longest_prompt = max(self.longest_prompt, prompt_length)
        self.longest_example = max(self.longest_example, example_length)
        prompt_over = prompt_length > self.max_prompt_length
        example_over = example_length > self.max_length
        self.prompts_over += prompt_over
        self.examples_over += example_over
        if prompt_over or example_over:
            self.rows_over += 1
            if len(self.over_rows) < MAX_LISTED_ROWS:
                self.over_rows.append(row_number)
            return True
        return False

    def proposed_lengths(self) -> tuple[int, int]:
        """(max_prompt_length, max_length) that fit every measured row, rounded up to a multiple of 8."""
        prompt = max(8, _round_up(self.longest_prompt, 8))
        total = max(prompt + 8, _round_up(self.longest_example, 8))
        return prompt, total

    def summary(self) -> dict[str, Any]:
        """Flat figures for a run summary."""
        proposed_prompt, proposed_total = self.proposed_lengths()
        return {
            "rows": self.rows,
            "longest_prompt_tokens": self.longest_prompt,
            "longest_example_tokens": self.longest_example,
            "max_prompt_length": self.max_prompt_length,
            "max_length": self.max_length,
            "rows_over_max_prompt_length": self.prompts_over,
            "rows_over_max_length": self.examples_over,
            "over_length": self.over_length,
            "rows_cut": self.rows_cut,
            "rows_dropped": self.rows_dropped,
            "aggregation_prompts_with_drafts_cut": self.proposals_cut,
            "proposed_max_prompt_length": proposed_prompt,
            "proposed_max_length": proposed_total,
        }

    def message(self) -> str:
        """One sentence for the run's log and the form's preview."""
        proposed_prompt, proposed_total = self.proposed_lengths()
        sentence = (
            f"{self.rows} rows: longest prompt {self.longest_prompt} tokens, longest example {self.longest_example}; "
            f"limits {self.max_prompt_length} / {self.max_length}"
        )
        if not self.rows_over:
            return sentence + "; no row is over them"
        rows = ", ".join(str(number) for number in self.over_rows)
        more = " ..." if self.rows_over > len(self.over_rows) else ""
        sentence += (
            f"; {self.rows_over} over them (rows {rows}{more}: {self.prompts_over} over max_prompt_length, "
            f"{self.examples_over} over max_length)"
        )
        if self.over_length == "cut":
            sentence += f"; {self.rows_cut} cut"
            if self.proposals_cut:
                sentence += f" ({self.proposals_cut} aggregation prompts by the ends of their drafts)"
        if self.rows_dropped:
            sentence += f"; {self.rows_dropped} dropped"
        return (
            sentence + f". Lengths that fit every row: max_prompt_length {proposed_prompt}, max_length {proposed_total}"
        )

    def refusal(self) -> str:
        """The error of over_length "refuse"."""
        proposed_prompt, proposed_total = self.proposed_lengths()
        rows = ", ".join(str(number) for number in self.over_rows)
        more = " ..." if self.rows_over > len(self.over_rows) else ""
        return (
            f"{self.rows_over} of {self.rows} rows are longer than the limits (rows {rows}{more}; longest prompt "
            f"{self.longest_prompt} tokens against max_prompt_length {self.max_prompt_length}, longest example "
            f"{self.longest_example} against max_length {self.max_length}) and over_length is refuse; set "
            f"max_prompt_length {proposed_prompt} and max_length {proposed_total} to fit every row, or over_length "
            "to cut or drop"
        )


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _water_fill(lengths: list[int], budget: int) -> list[int]:
    """Token allowances for drafts sharing `budget`: short drafts stay whole, long ones get equal shares."""
    shares = [0] * len(lengths)
    remaining = sorted(range(len(lengths)), key=lambda index: lengths[index])
    left = budget
    while remaining:
        fair = left // len(remaining)
        index = remaining[0]
        if lengths[index] <= fair:
            shares[index] = lengths[index]
            left -= lengths[index]
            remaining.pop(0)
            continue
        for index in remaining:
            shares[index] = fair
        break
    return shares


def cut_aggregation_prompt(
    tokenizer: Any, prompt: Messages, proposals: tuple[str, ...], budget: int, prompt_format: str
) -> tuple[Messages, list[int]] | None:
    """The aggregation prompt in at most `budget` tokens by cutting the ends of its drafts, or None.

    The chat header, the aggregator instruction, the numbering and the user's question stay whole:
    only the drafts' bodies shrink (short drafts are kept whole; the long ones share what is left).
    None when the prompt does not fit even with every draft empty.
    """
    system = prompt[0]["content"]
    instruction = system[: len(system) - len(_numbered(proposals))]
    draft_ids = [tokenizer(proposal, add_special_tokens=False)["input_ids"] for proposal in proposals]

    def rebuilt(drafts: list[str]) -> tuple[Messages, list[int]]:
        messages = [{"role": "system", "content": instruction + _numbered(drafts)}, *prompt[1:]]
        ids = tokenizer(prompt_text(tokenizer, messages, prompt_format), add_special_tokens=False)["input_ids"]
        return messages, list(ids)

    _empty, empty_ids = rebuilt([""] * len(proposals))
    allowance = budget - len(empty_ids)
    for _attempt in range(8):  # decoding a cut and re-encoding it can shift a token or two at the seams
        if allowance < 0:
            return None
        shares = _water_fill([len(ids) for ids in draft_ids], allowance)
        drafts = [tokenizer.decode(ids[:share]) for ids, share in zip(draft_ids, shares, strict=True)]
        messages, ids = rebuilt(drafts)
        if len(ids) <= budget:
            return messages, ids
        allowance -= len(ids) - budget
    return None


def fit_prompt_completions(
    tokenizer: Any,
    prompts: list[Messages],
    completions: list[list[str]],
    *,
    max_length: int,
    max_prompt_length: int,
    over_length: str = "cut",
    prompt_format: str = "chat_template",
    proposals: list[tuple[str, ...]] | None = None,
) -> tuple[list[tuple[list[int], list[list[int]]] | None], LengthReport]:
    """Encode each prompt with its replies (one for SFT, two for a pair) and apply `over_length`.

    Returns per row (prompt_ids, [reply_ids, ...]) or None for a dropped row, and the length report.
    "refuse" raises InvalidInputError naming the rows and the lengths that would fit; "drop" leaves
    those rows out; "cut" shortens them: an aggregation prompt (`proposals` given) loses the ends of
    its drafts (as far as needed for its whole reply to fit as well), another prompt keeps its last
    `max_prompt_length` tokens (TRL's and ALMoST's side), and a reply loses its end. Every cut and drop
    is counted in the report.
    """
    report = LengthReport(max_length=max_length, max_prompt_length=max_prompt_length, over_length=over_length)
    reply_count = len(completions[0]) if completions else 0
    per_reply = [
        _encode_whole(tokenizer, prompts, [replies[position] for replies in completions], prompt_format)
        for position in range(reply_count)
    ]
    fitted: list[tuple[list[int], list[list[int]]] | None] = []
    for index, prompt in enumerate(prompts):
        prompt_ids = per_reply[0][index][0]
        reply_ids = [encoded[index][1] for encoded in per_reply]
        over = report.add(index + 1, len(prompt_ids), [len(ids) for ids in reply_ids])
        if not over:
            fitted.append((prompt_ids, reply_ids))
            continue
        if over_length == "drop":
            report.rows_dropped += 1
            fitted.append(None)
            continue
        if over_length == "refuse":
            fitted.append(None)
            continue
        row_proposals = proposals[index] if proposals else ()
        # An aggregation row gives up draft text before any of its target: the drafts shrink until the
        # whole reply fits too, when they can.
        budget = min(max_prompt_length, max_length - max(len(ids) for ids in reply_ids)) if row_proposals else 0
        cut = None
        if row_proposals and len(prompt_ids) > budget > 0:
            cut = cut_aggregation_prompt(tokenizer, prompt, row_proposals, budget, prompt_format)
        if cut is None and row_proposals and len(prompt_ids) > max_prompt_length:
            cut = cut_aggregation_prompt(tokenizer, prompt, row_proposals, max_prompt_length, prompt_format)
        if cut is not None:
            prompt_ids = cut[1]
            report.proposals_cut += 1
        elif len(prompt_ids) > max_prompt_length:
            prompt_ids = prompt_ids[-max_prompt_length:]
        room = max_length - len(prompt_ids)
        reply_ids = [ids[:room] for ids in reply_ids]
        if not all(reply_ids):
            report.rows_dropped += 1  # nothing of a reply would be left to learn from
            fitted.append(None)
            continue
        report.rows_cut += 1
        fitted.append((prompt_ids, reply_ids))
    if over_length == "refuse" and report.rows_over:
        raise InvalidInputError(report.refusal())
    return fitted, report


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
    for prompt_ids, completion_ids in _encode_whole(tokenizer, prompts, completions, prompt_format):
        prompt_ids = prompt_ids[-max_prompt_length:]
        encoded.append((prompt_ids, completion_ids[: max_length - len(prompt_ids)]))
    return encoded


def encode_sft_with_report(
    tokenizer: Any,
    examples: list[PromptCompletion],
    *,
    max_length: int,
    max_prompt_length: int,
    over_length: str = "cut",
    prompt_format: str = "chat_template",
    completion_only_loss: bool = True,
) -> tuple[list[dict[str, list[int]]], LengthReport]:
    """Token rows, labels masked on the prompt unless `completion_only_loss` is off, and the length report."""
    fitted, report = fit_prompt_completions(
        tokenizer,
        [example.prompt for example in examples],
        [[example.completion] for example in examples],
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        over_length=over_length,
        prompt_format=prompt_format,
        proposals=[example.proposals for example in examples],
    )
    features = []
    for row in fitted:
        if row is None:
            continue
        prompt_ids, (completion_ids,) = row
        prompt_labels = prompt_ids if not completion_only_loss else [IGNORE_INDEX] * len(prompt_ids)
        features.append({"input_ids": prompt_ids + completion_ids, "labels": prompt_labels + completion_ids})
    return features, report



def pack_sft(features: list[dict[str, list[int]]], *, max_length: int) -> list[dict[str, list[int]]]:
    """Greedily pack whole examples into rows of at most `max_length` tokens.

    Each row carries `position_ids` restarting at 0 for every example; the model is then called
    without an attention mask, and transformers turns the restarts into a block-diagonal mask, so an
    example never attends to the one packed before it. No example is split.
    """
    packed: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for feature in features:
        length = len(feature["input_ids"])
        if current["input_ids"] and len(current["input_ids"]) + length > max_length:
            packed.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += feature["input_ids"]
        current["labels"] += feature["labels"]
        current["position_ids"] += list(range(length))
    if current["input_ids"]:
        packed.append(current)
    return packed


def encode_preference_with_report(
    tokenizer: Any,
    pairs: list[PreferencePair],
    *,
    max_length: int,
    max_prompt_length: int,
    over_length: str = "cut",
    prompt_format: str = "chat_template",
) -> tuple[list[dict[str, Any]], LengthReport]:
    """Per pair: the prompt's tokens and each reply's tokens, fitted by `over_length`, and the length report.

    `index` keeps the pair's position in the dataset, so a dropped pair leaves a gap rather than shifting
    the others (reference log-probs are cached by it).
    """
    fitted, report = fit_prompt_completions(
        tokenizer,
        [pair.prompt for pair in pairs],
        [[pair.chosen, pair.rejected] for pair in pairs],
        max_length=max_length,
        max_prompt_length=max_prompt_length,
        over_length=over_length,
        prompt_format=prompt_format,
    )
    features = []
    for index, row in enumerate(fitted):
        if row is None:
            continue
        prompt_ids, (chosen_ids, rejected_ids) = row
        features.append(
            {"index": index, "prompt_ids": prompt_ids, "chosen_ids": chosen_ids, "rejected_ids": rejected_ids}
        )
    if not features:
        raise InvalidInputError(f"no pair is left to train on: {report.message()}")
    return features, report



# --- batching (torch imported inside: only trainers call these) ----------------------------------


def collate_sft(features: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad to the longest row of the batch; packed rows get position_ids and no attention mask."""
    import torch

    longest = max(len(feature["input_ids"]) for feature in features)
    input_ids = torch.full((len(features), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(features), longest), dtype=torch.long)
    packed = "position_ids" in features[0]
    position_ids = torch.zeros((len(features), longest), dtype=torch.long)
    for row, feature in enumerate(features):
        length = len(feature["input_ids"])
        input_ids[row, :length] = torch.tensor(feature["input_ids"])
        labels[row, :length] = torch.tensor(feature["labels"])
        attention_mask[row, :length] = 1
        if packed:
            position_ids[row, :length] = torch.tensor(feature["position_ids"])
            # Padding becomes one more packed segment (positions from 0), masked from the loss.
            position_ids[row, length:] = torch.arange(longest - length)
    if packed:
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def collate_pairs(features: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """One batch of 2B rows, the B chosen sequences then the B rejected ones, right-padded to the longest.

    `labels` is -100 outside the replies. `completion_start` is the first reply position in the whole
    batch: the model computes logits from there only. Reference log-probs, when present, ride along.
    """
    import torch

    sequences = [f["prompt_ids"] + f["chosen_ids"] for f in features] + [
        f["prompt_ids"] + f["rejected_ids"] for f in features
    ]
    prompt_lengths = [len(f["prompt_ids"]) for f in features] * 2
    longest = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), longest), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, (sequence, prompt_length) in enumerate(zip(sequences, prompt_lengths, strict=True)):
        tokens = torch.tensor(sequence)
        input_ids[row, : len(sequence)] = tokens
        labels[row, prompt_length : len(sequence)] = tokens[prompt_length:]
        attention_mask[row, : len(sequence)] = 1
    batch: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "completion_start": torch.tensor(min(prompt_lengths)),
        "index": torch.tensor([f["index"] for f in features]),
    }
    if "ref_chosen_logps" in features[0]:
        batch["ref_chosen_logps"] = torch.tensor([f["ref_chosen_logps"] for f in features], dtype=torch.float64)
        batch["ref_rejected_logps"] = torch.tensor([f["ref_rejected_logps"] for f in features], dtype=torch.float64)
    return batch

"""A training run's length limits applied to its encoded examples: each row measured, and every one over
`max_prompt_length` or `max_length` cut, dropped or refused as `over_length` says, and counted.

Nothing over the limits is cut or dropped without being counted in the `LengthReport`, which goes into
the run's result; an AFT aggregation prompt is cut in its drafts, never in its instruction or question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipelines.errors import InvalidInputError
from pipelines.training.examples import Messages, numbered_proposals
from pipelines.training.formatting import encode_whole, prompt_text

MAX_LISTED_ROWS = 10
"""How many row numbers an over-length message or report lists."""


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
    instruction = system[: len(system) - len(numbered_proposals(proposals))]
    draft_ids = [tokenizer(proposal, add_special_tokens=False)["input_ids"] for proposal in proposals]

    def rebuilt(drafts: list[str]) -> tuple[Messages, list[int]]:
        messages = [{"role": "system", "content": instruction + numbered_proposals(drafts)}, *prompt[1:]]
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
        encode_whole(tokenizer, prompts, [replies[position] for replies in completions], prompt_format)
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

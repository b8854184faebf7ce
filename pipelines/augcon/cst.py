"""The Context-Split-Tree: one call asks a question about a context and splits it in two; recurse.

Per node (the paper's `CST`): a context of `min_length` characters or fewer is a leaf; otherwise the
model answers the question-and-split prompt, retried until the output parses (at most
`max_attempts` calls); a question shorter than `min_question_length` drops the branch; the node's
(context, question) is recorded, and both sub-contexts are split in turn unless one of them is not
shorter than its parent. Ours: a sub-context fewer of whose words appear in order in its parent than
`min_split_grounding` is recorded as "ungrounded" and not split (`grounding.py`), and with
`constrained_output` every call decodes under `cst_grammar`, so each reply parses. A chunk gets new trees until it holds gen_count x over_generation questions
(or `max_rounds_per_chunk` trees were grown).

We grow the trees of all chunks of a group of documents level by level, so every level is one
batched call to the backend (the paper recurses one node at a time in a thread pool). Seeds are
derived from the group's first document, round, level and attempt, so a rerun of a group draws the
same trees.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.augcon.config import AugConConfig
from pipelines.augcon.corpus import RootChunk, normalise
from pipelines.augcon.grounding import split_grounding
from pipelines.augcon.prompts import CST_STOP, FULL_VARIANT, CSTDemonstration, CSTVariant, cst_prompt
from pipelines.common.progress import Progress
from pipelines.llm.grammar import Grammar
from pipelines.llm.types import LLMBackend, SamplingParams

# "Context 1:" with the variations small models produce: any case, bold markers, a full-width
# colon, a dash or a period instead of the colon, spaces anywhere.
_LABEL = r"(?:\*\*|__)?\s*context\s*{number}\s*(?:\*\*|__)?\s*[:：.\-]\s*(?:\*\*|__)?"
_CONTEXT_1 = re.compile(_LABEL.format(number="1"), re.IGNORECASE)
_CONTEXT_2 = re.compile(_LABEL.format(number="2"), re.IGNORECASE)
_CONTEXT_3 = re.compile(_LABEL.format(number="3"), re.IGNORECASE)
_QUESTION_LABEL = re.compile(r"(?:\*\*|__)?\s*question\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?", re.IGNORECASE)
# Where the second sub-context ends: a separator or the next labelled line (a new example begins).
RAW_TEXT_KEPT = 600
_SECTION_END = re.compile(r"\n\s*(?:---|(?:\*\*)?\s*(?:context|question)\s*\d*\s*(?:\*\*)?\s*[:：])", re.IGNORECASE)


@dataclass(frozen=True)
class CSTParse:
    """A parsed question-and-split answer, or why it did not parse (`error`)."""

    question: str = ""
    context_1: str = ""
    context_2: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def parse_cst(text: str) -> CSTParse:
    """Read "question / Context 1: ... / Context 2: ..." from a completion that began after "Question: ".

    Tolerated: a repeated "Question:" label, labels in any case or in bold, full-width colons, blank or
    missing lines between fields, trailing text after a separator. Refused: a missing label, an empty
    field, "Context 2" before "Context 1", or a third sub-context.
    """
    first = _CONTEXT_1.search(text)
    if first is None:
        return CSTParse(error="no “Context 1:” label")
    second = _CONTEXT_2.search(text, first.end())
    if second is None:
        return CSTParse(error="no “Context 2:” label after “Context 1:”")
    head = text[: first.start()]
    labels = list(_QUESTION_LABEL.finditer(head))
    if labels:
        head = head[labels[-1].end() :]
    question = normalise(head.strip().strip("*_"))
    context_1 = normalise(text[first.end() : second.start()])
    rest = text[second.end() :]
    if _CONTEXT_3.search(rest):
        return CSTParse(error="more than two sub-contexts")
    end = _SECTION_END.search(rest)
    context_2 = normalise(rest[: end.start()] if end else rest)
    if not question:
        return CSTParse(error="empty question")
    if not context_1 or not context_2:
        return CSTParse(error="empty sub-context")
    return CSTParse(question=question, context_1=context_1, context_2=context_2)


@dataclass
class CallStats:
    """What the model was asked for: calls, parse failures, retries and tokens."""

    calls: int = 0
    parse_failures: int = 0
    """Outputs that did not parse (each failed attempt counts)."""
    retries: int = 0
    """Calls beyond the first for a node."""
    gave_up: int = 0
    """Nodes whose every attempt failed to parse."""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: CallStats | dict[str, int]) -> None:
        values = other if isinstance(other, dict) else asdict(other)
        for name, value in values.items():
            setattr(self, name, getattr(self, name) + int(value))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class AskOutcome:
    parse: CSTParse
    attempts: int
    last_text: str


def seed_for(base: int, *parts: Any) -> int:
    """A stable 31-bit seed from the run seed and where a call sits (document, round, level, attempt)."""
    digest = hashlib.sha256(":".join(str(part) for part in (base, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


CHARACTERS_PER_TOKEN_BUDGETED = 3
"""Characters a question-and-split reply may spend per new token, for `cst_grammar`'s bounds: English
averages about 4 characters a token, so a reply within the bounds ends well before `max_tokens`."""


def cst_grammar(config: AugConConfig) -> Grammar:
    """The form the question-and-split prompt asks for, after its closing "Question: ".

    One line of question (`min_question_length` characters at least), then "Context 1: " and
    "Context 2: " each on one line after a blank line, as the demonstrations show. The question and
    Context 1 are bounded so that "Context 2: " is always reached within `question_max_tokens`
    (a reply cut before it would not parse): the question to a fifth of the character budget,
    Context 1 to half of it. The reply ends after Context 2 (an optional line break, then the end token).
    """
    budget = CHARACTERS_PER_TOKEN_BUDGETED * config.question_max_tokens
    shortest_question = max(1, config.min_question_length)
    longest_question = max(shortest_question, budget // 5)
    longest_context = max(8, budget // 2)
    return Grammar.regex(
        rf"\S[^\n]{{{shortest_question - 1},{longest_question - 1}}}"
        rf"\n\nContext 1: \S[^\n]{{0,{longest_context - 1}}}"
        r"\n\nContext 2: \S[^\n]*\n?"
    )


def sampling_for(config: AugConConfig, seed: int) -> SamplingParams:
    return SamplingParams(
        n=1,
        temperature=config.question_temperature,
        top_p=config.question_top_p,
        max_tokens=config.question_max_tokens,
        seed=seed,
        stop=CST_STOP,
        grammar=cst_grammar(config) if config.constrained_output else None,
    )


def ask_split(
    backend: LLMBackend,
    contexts: Sequence[str],
    demonstrations: Sequence[CSTDemonstration],
    config: AugConConfig,
    stats: CallStats | Sequence[CallStats],
    *,
    variant: CSTVariant = FULL_VARIANT,
    seed_parts: tuple[Any, ...] = (),
) -> list[AskOutcome]:
    """Ask the question-and-split prompt for every context, retrying the ones that do not parse.

    `stats` is one CallStats for all contexts, or one per context (contexts of several documents
    asked in one batch still count against their own document).
    """
    stats_of = list(stats) if isinstance(stats, Sequence) else [stats] * len(contexts)
    prompts = [cst_prompt(context, demonstrations, variant) for context in contexts]
    outcomes: list[AskOutcome | None] = [None] * len(contexts)
    pending = list(range(len(contexts)))
    last_text = [""] * len(contexts)
    last_parse = [CSTParse(error="not asked")] * len(contexts)
    for attempt in range(config.max_attempts):
        if not pending:
            break
        for start in range(0, len(pending), config.batch_size):
            batch = pending[start : start + config.batch_size]
            params = sampling_for(config, seed_for(config.seed, *seed_parts, attempt, start))
            completions = backend.complete([prompts[index] for index in batch], params)
            for index, drawn in zip(batch, completions, strict=True):
                completion, counted = drawn[0], stats_of[index]
                counted.calls += 1
                counted.retries += 1 if attempt else 0
                counted.prompt_tokens += completion.prompt_tokens
                counted.completion_tokens += completion.completion_tokens
                parsed = parse_cst(completion.text)
                last_text[index], last_parse[index] = completion.text, parsed
                if parsed.ok:
                    outcomes[index] = AskOutcome(parsed, attempt + 1, completion.text)
                else:
                    counted.parse_failures += 1
        pending = [index for index in pending if outcomes[index] is None]
    for index in pending:
        stats_of[index].gave_up += 1
        outcomes[index] = AskOutcome(last_parse[index], config.max_attempts, last_text[index])
    return [outcome for outcome in outcomes if outcome is not None]


@dataclass
class TreeNode:
    """One node of a split tree, as the run page and the queries artifact show it."""

    node_id: str
    chunk_id: str
    document_id: str
    round: int
    depth: int
    parent_id: str | None
    context: str
    question: str = ""
    status: str = "question"
    """question (recorded), short_question, parse_failed, leaf (too short to split), ungrounded (a
    sub-context too little of which comes from its parent; not split)."""
    grounding: float | None = None
    """Share of this context's words found in order in its parent's (ROUGE-L recall); None for a root."""
    reason: str = ""
    """Why the node has no question or no children."""
    attempts: int = 0
    raw: str = ""
    """The model's last output when none parsed (cut to 600 characters), to show why."""
    children: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DocumentTrees:
    nodes: list[TreeNode]
    stats: CallStats
    rounds_by_chunk: dict[str, int]
    questions_by_chunk: dict[str, int]


def build_document_trees(
    backend: LLMBackend,
    chunks: Sequence[RootChunk],
    demonstrations: Sequence[CSTDemonstration],
    config: AugConConfig,
    progress: Progress,
) -> DocumentTrees:
    """Grow trees on every chunk of one document until each has its question target."""
    return build_trees_together(backend, chunks, demonstrations, config, progress)[chunks[0].document_id]


def build_trees_together(
    backend: LLMBackend,
    chunks: Sequence[RootChunk],
    demonstrations: Sequence[CSTDemonstration],
    config: AugConConfig,
    progress: Progress,
) -> dict[str, DocumentTrees]:
    """Grow the trees of chunks from one or several documents level by level, in shared calls.

    Why several: a document has one or two chunks, so its levels alone are calls of 1-4 prompts,
    and decoding a handful of rows leaves most of the hardware idle (bench/generation.py: batch 8
    is ~4x the tokens/s of batch 1 on CPU). Each document still gets its own nodes and CallStats;
    seeds come from the first document, the round and the level, so the same group of documents
    always draws the same trees.
    """
    document_ids = list(dict.fromkeys(chunk.document_id for chunk in chunks))
    stats = {document_id: CallStats() for document_id in document_ids}
    nodes: dict[str, list[TreeNode]] = {document_id: [] for document_id in document_ids}
    questions = {chunk.chunk_id: 0 for chunk in chunks}
    rounds = {chunk.chunk_id: 0 for chunk in chunks}
    for round_number in range(config.max_rounds_per_chunk):
        active = [chunk for chunk in chunks if questions[chunk.chunk_id] < chunk.target]
        if not active:
            break
        frontier = [
            TreeNode(
                node_id=f"{chunk.chunk_id}-r{round_number}-1",
                chunk_id=chunk.chunk_id,
                document_id=chunk.document_id,
                round=round_number,
                depth=0,
                parent_id=None,
                context=chunk.text,
            )
            for chunk in active
        ]
        for chunk in active:
            rounds[chunk.chunk_id] += 1
        depth = 0
        while frontier:
            progress.check_cancelled()
            for node in frontier:
                nodes[node.document_id].append(node)
            # Ungrounded sub-contexts are recorded (the tree viewer shows them) but never asked.
            splittable = [
                node for node in frontier if node.status != "ungrounded" and len(node.context) > config.leaf_characters
            ]
            for node in frontier:
                if node.status != "ungrounded" and len(node.context) <= config.leaf_characters:
                    node.status, node.reason = "leaf", f"{len(node.context)} characters, not above min_length"
            if splittable:
                progress.log(
                    f"questions: {len(document_ids)} document(s), round {round_number}, level {depth}: "
                    f"asking {len(splittable)} context(s)"
                )
            outcomes = ask_split(
                backend,
                [node.context for node in splittable],
                demonstrations,
                config,
                [stats[node.document_id] for node in splittable],
                seed_parts=(document_ids[0], round_number, depth),
            )
            next_frontier: list[TreeNode] = []
            for node, outcome in zip(splittable, outcomes, strict=True):
                next_frontier.extend(_settle(node, outcome, config, questions))
            frontier = next_frontier
            depth += 1
    return {
        document_id: DocumentTrees(
            nodes=nodes[document_id],
            stats=stats[document_id],
            rounds_by_chunk={chunk.chunk_id: rounds[chunk.chunk_id] for chunk in chunks if chunk.document_id == document_id},
            questions_by_chunk={
                chunk.chunk_id: questions[chunk.chunk_id] for chunk in chunks if chunk.document_id == document_id
            },
        )
        for document_id in document_ids
    }


def _settle(node: TreeNode, outcome: AskOutcome, config: AugConConfig, questions: dict[str, int]) -> list[TreeNode]:
    """Record the node's answer and return the children to split next (the paper's stopping rules)."""
    node.attempts = outcome.attempts
    parsed = outcome.parse
    if not parsed.ok:
        node.status, node.reason = "parse_failed", f"no parsable answer in {outcome.attempts} calls ({parsed.error})"
        node.raw = outcome.last_text[:RAW_TEXT_KEPT]
        return []
    node.question = parsed.question
    if len(parsed.question) < config.min_question_length:
        node.status = "short_question"
        node.reason = f"question shorter than {config.min_question_length} characters; branch dropped"
        return []
    node.status = "question"
    questions[node.chunk_id] += 1
    parent_length = len(node.context)
    if len(parsed.context_1) >= parent_length or len(parsed.context_2) >= parent_length:
        node.reason = "a sub-context is not shorter than this context; not split further"
        return []
    children = []
    for number, context in enumerate((parsed.context_1, parsed.context_2), start=1):
        child = TreeNode(
            node_id=f"{node.node_id}.{number}",
            chunk_id=node.chunk_id,
            document_id=node.document_id,
            round=node.round,
            depth=node.depth + 1,
            parent_id=node.node_id,
            context=context,
            grounding=round(split_grounding(context, node.context), 4),
        )
        node.children.append(child.node_id)
        if child.grounding < config.min_split_grounding:
            # Kept in the tree (the viewer shows it) but never asked: its questions would be about invented text.
            child.status = "ungrounded"
            child.reason = (
                f"{child.grounding:.0%} of its words appear in order in the parent, below min_split_grounding "
                f"{config.min_split_grounding:.0%}; not split"
            )
        children.append(child)
    return children

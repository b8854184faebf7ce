"""Structured output: the grammar a reply must match, and the token mask that enforces it while decoding.

A step that parses the model's reply (AugCon's question-and-split, ALMoST's query lines, a yes/no
judge, a text judge's verdict) can pass the grammar of the reply it expects in
`SamplingParams.grammar`: a regular expression or a JSON schema. Every backend honours it in its
own way: the transformers backend masks the tokens the grammar forbids at every step
(`GrammarLogitsProcessor`, before our sampler draws), vLLM gets its structured-output parameters,
and an OpenAI-compatible server gets `response_format` for a JSON schema (a regular expression
there falls back on the unconstrained request and the step's parser).

The engine is xgrammar. Measured by `bench/generation.py --grammar-overhead` on the 2-core CPU with
SmolLM2-135M's tokenizer (bench/results/cpu-2core-grammar-overhead.json, figures in
docs/operators.md): it ties with llguidance at batch 1 (under 0.5 % of a step) and at batch 32 is
under 10 % of a step for both grammars and 1.8x faster than llguidance on regular expressions, the kind
every one of our steps uses; it fills a batch's masks in one call and compiles a grammar once per
tokenizer, shared by every row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pipelines.errors import InvalidConfigError

GrammarKind = Literal["regex", "json_schema"]
GRAMMAR_KINDS: tuple[GrammarKind, ...] = ("regex", "json_schema")


@dataclass(frozen=True)
class Grammar:
    """What a reply must match: a regular expression, or a JSON schema (held as its JSON text, so the
    grammar is hashable and compiles once per backend)."""

    kind: GrammarKind
    source: str

    def __post_init__(self) -> None:
        if self.kind not in GRAMMAR_KINDS:
            raise InvalidConfigError(
                f"grammar kind must be one of {', '.join(GRAMMAR_KINDS)}, got {self.kind!r}", field="grammar"
            )
        if not self.source:
            raise InvalidConfigError("a grammar needs a non-empty regular expression or JSON schema", field="grammar")
        if self.kind == "json_schema":
            try:
                parsed = json.loads(self.source)
            except json.JSONDecodeError as error:
                raise InvalidConfigError(
                    f"grammar: the JSON schema is not valid JSON ({error})", field="grammar"
                ) from error
            if not isinstance(parsed, dict):
                raise InvalidConfigError("grammar: a JSON schema must be a JSON object", field="grammar")

    @classmethod
    def regex(cls, pattern: str) -> Grammar:
        return cls("regex", pattern)

    @classmethod
    def json_schema(cls, schema: dict[str, Any]) -> Grammar:
        return cls("json_schema", json.dumps(schema, sort_keys=True, separators=(",", ":")))

    def schema(self) -> dict[str, Any]:
        """The JSON schema as a dict (only for `kind == "json_schema"`)."""
        if self.kind != "json_schema":
            raise ValueError(f"a {self.kind} grammar has no JSON schema")
        return json.loads(self.source)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | Grammar | None) -> Grammar | None:
        if data is None or isinstance(data, Grammar):
            return data
        if not isinstance(data, dict) or "kind" not in data or "source" not in data:
            raise InvalidConfigError("grammar must be an object with `kind` and `source`", field="grammar")
        return cls(str(data["kind"]), str(data["source"]))


def choice_regex(choices: tuple[str, ...]) -> str:
    """A regular expression matching exactly one of `choices` (each taken literally)."""
    return "(" + "|".join(_escape(choice) for choice in choices) + ")"


def _escape(text: str) -> str:
    # Regex engines of the grammar libraries take the common syntax; escape every metacharacter.
    return "".join("\\" + character if character in r"\.^$|?*+()[]{}/-" else character for character in text)


class GrammarCompiler:
    """Compiles grammars against one tokenizer (xgrammar) and caches them: a step asks the same grammar
    for every batch, and building the tokenizer's tables (~1 s) is paid once per backend."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        import xgrammar

        self._xgrammar = xgrammar
        self.vocab_size = vocab_size
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._compiler = xgrammar.GrammarCompiler(info, max_threads=2)
        self.compiled = lru_cache(maxsize=64)(self._compile)

    def _compile(self, grammar: Grammar) -> Any:
        try:
            if grammar.kind == "regex":
                return self._compiler.compile_regex(grammar.source)
            # Compact JSON: a small model given free whitespace can pad a reply with blanks until max_tokens.
            return self._compiler.compile_json_schema(grammar.source, any_whitespace=False)
        except (RuntimeError, ValueError) as error:
            raise InvalidConfigError(
                f"the {grammar.kind} grammar does not compile: {error}", field="grammar"
            ) from error

    def processor(self, grammar: Grammar, rows: int) -> GrammarLogitsProcessor:
        return GrammarLogitsProcessor(self._xgrammar, self.compiled(grammar), rows, self.vocab_size)


class GrammarLogitsProcessor:
    """A transformers logits processor that sets every token the grammar forbids to -inf, row by row.

    Put it before the sampler (`InverseCDFSampler`) or let greedy decoding take the argmax: either
    way only allowed tokens can be drawn. Each row has its own matcher, advanced by the token the
    row drew at the previous step (the last column of `input_ids`). A row whose grammar is complete
    may only end (the model's end token); a row that ended some other way (a stop string, then
    padding) is left unmasked, as generate no longer reads what it draws.
    """

    def __init__(self, xgrammar: Any, compiled: Any, rows: int, vocab_size: int) -> None:
        self._xgrammar = xgrammar
        self.matchers = [xgrammar.GrammarMatcher(compiled) for _ in range(rows)]
        self.live = [True] * rows
        self.bitmask = xgrammar.allocate_token_bitmask(rows, vocab_size)
        self.vocab_size = vocab_size
        self._batch = xgrammar.BatchGrammarMatcher(max_threads=2) if rows > 1 else None
        self._started = False

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._started:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                matcher = self.matchers[row]
                if self.live[row] and not matcher.is_terminated() and not matcher.accept_token(token):
                    self.live[row] = False
        self._started = True
        active = [row for row, matcher in enumerate(self.matchers) if self.live[row] and not matcher.is_terminated()]
        if len(active) < len(self.matchers):
            self._xgrammar.reset_token_bitmask(self.bitmask)  # every token allowed for the rows left alone
        if self._batch is not None and len(active) > 1:
            self._batch.batch_fill_next_token_bitmask(
                [self.matchers[row] for row in active], self.bitmask, indices=active
            )
        else:
            for row in active:
                self.matchers[row].fill_next_token_bitmask(self.bitmask, row)
        self._xgrammar.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device), vocab_size=self.vocab_size)
        return scores


def structured_output_mode(backend: object, grammar: Grammar | None) -> str:
    """How `backend` constrains a request with `grammar`, in words for a step's run log.

    Every bundled backend says it (`structured_output_mode`); anything else (a test's scripted
    backend) is taken to ignore the grammar, and the step's parser reads the reply as before.
    """
    describe = getattr(backend, "structured_output_mode", None)
    if describe is None:
        return "unconstrained" if grammar is None else "unconstrained: this backend takes no grammar"
    return describe(grammar)

"""vLLM's structured-output parameters from a grammar (skipped where vLLM does not import, as the other vLLM tests)."""

from __future__ import annotations

import pytest

from pipelines.llm.grammar import Grammar
from pipelines.llm.vllm_backend import structured_output_fields


def test_a_grammar_becomes_vllms_structured_output_parameters():
    pytest.importorskip("vllm", reason="vLLM is not installed (requirements-gpu.txt on a GPU machine)")
    from vllm import SamplingParams as VLLMSamplingParams

    regex = structured_output_fields(Grammar.regex("(yes|no)"))
    schema = structured_output_fields(Grammar.json_schema({"type": "object"}))
    for fields, expected in ((regex, "(yes|no)"), (schema, {"type": "object"})):
        ((keyword, value),) = fields.items()
        assert keyword in ("structured_outputs", "guided_decoding")
        assert (value.regex if expected == "(yes|no)" else value.json) == expected
        VLLMSamplingParams(max_tokens=4, **fields)  # the engine's own params accept it
    assert structured_output_fields(None) == {}

"""Constrained decoding on the transformers backend: a random-weight model, which otherwise writes noise,
writes only replies that match the grammar, batched, sampled and greedy."""

from __future__ import annotations

import json
import re

import pytest

from pipelines.errors import InvalidConfigError
from pipelines.llm.grammar import Grammar, choice_regex, structured_output_mode
from pipelines.llm.types import SamplingParams

CODE = r"[a-z]{3,8}-[0-9]{2}"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "count": {"type": "integer", "minimum": 0, "maximum": 999},
    },
    "required": ["name", "count"],
    "additionalProperties": False,
}
PROMPTS = ["Write a code:", "The product code is", "Code", "A much longer prompt that asks for a product code now:"]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    # batch_size 3 splits the 4 prompts x 2 samples over several generate calls of different widths.
    backend = TransformersBackend(tiny_model_dir, device="cpu", batch_size=3, torch_threads=2)
    yield backend
    backend.close()


def test_the_random_model_does_not_write_the_format_by_itself(backend):
    drawn = backend.complete(PROMPTS, SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=3))
    texts = [completion.text for completions in drawn for completion in completions]
    assert not all(re.fullmatch(CODE, text) for text in texts), texts


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_every_batched_reply_matches_the_regular_expression(backend, temperature):
    params = SamplingParams(n=2, temperature=temperature, max_tokens=24, seed=5, grammar=Grammar.regex(CODE))
    drawn = backend.complete(PROMPTS, params)
    assert [len(completions) for completions in drawn] == [2] * len(PROMPTS)
    for completions in drawn:
        for completion in completions:
            assert re.fullmatch(CODE, completion.text), completion.text
            assert completion.finish_reason == "stop"


def test_every_sampled_chat_reply_is_json_of_the_schema(backend):
    conversations = [[{"role": "user", "content": prompt}] for prompt in PROMPTS]
    params = SamplingParams(n=2, temperature=1.0, max_tokens=160, seed=7, grammar=Grammar.json_schema(SCHEMA))
    for completions in backend.chat(conversations, params):
        for completion in completions:
            value = json.loads(completion.text)
            assert set(value) == {"name", "count"}, completion.text
            assert isinstance(value["name"], str) and len(value["name"]) <= 12
            assert isinstance(value["count"], int) and 0 <= value["count"] <= 999


def test_a_choice_grammar_gives_one_of_the_choices_and_a_run_log_line(backend):
    grammar = Grammar.regex(choice_regex(("yes", "no", "a.b")))
    drawn = backend.complete(PROMPTS, SamplingParams(n=3, temperature=1.5, max_tokens=6, seed=1, grammar=grammar))
    assert {completion.text for completions in drawn for completion in completions} <= {"yes", "no", "a.b"}
    assert structured_output_mode(backend, grammar) == "token mask (xgrammar, regex)"
    assert structured_output_mode(backend, None) == "unconstrained"


def test_a_grammar_that_does_not_compile_is_a_configuration_error_naming_it(backend):
    with pytest.raises(InvalidConfigError, match="regex grammar does not compile"):
        backend.complete(["x"], SamplingParams(max_tokens=4, grammar=Grammar.regex("(unclosed")))


def test_the_grammar_travels_in_sampling_params_and_stays_out_of_unconstrained_dicts():
    constrained = SamplingParams(temperature=0.0, grammar=Grammar.json_schema(SCHEMA))
    assert SamplingParams.from_dict(constrained.to_dict()) == constrained
    # Digests of configs stored before grammars existed (evaluation's caches) must not change.
    assert "grammar" not in SamplingParams(temperature=0.0).to_dict()
    with pytest.raises(InvalidConfigError, match="JSON schema is not valid JSON"):
        SamplingParams(grammar={"kind": "json_schema", "source": "{nope"})

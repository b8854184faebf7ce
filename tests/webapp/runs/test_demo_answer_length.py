"""The demo run's settings give the bundled model room to end its answers (at the old 48 tokens it never did)."""

from __future__ import annotations

import re

import pytest

from webapp.runs.management.commands.start_demo_run import DEMO_MAX_TOKENS, DEMO_SAMPLING

# A demo prompt (webapp/library/demo/seed_prompts.txt) whose answer fits the demo's budget; one, to keep
# the test short on a CPU (the figures for eight prompts are in start_demo_run.py).
PROMPTS = ["What is photosynthesis, in simple terms?"]
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]*_`]*$")


@pytest.mark.slow
def test_the_demo_settings_let_the_bundled_model_end_its_sentences(embedded_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend
    from pipelines.llm.types import SamplingParams

    backend = TransformersBackend(embedded_model_dir, batch_size=len(PROMPTS))
    conversations = [[{"role": "user", "content": prompt}] for prompt in PROMPTS]

    def answers(max_tokens: int) -> list[tuple[str, str]]:
        outputs = backend.chat(conversations, SamplingParams(max_tokens=max_tokens, **DEMO_SAMPLING))
        return [(completions[0].text.strip(), completions[0].finish_reason) for completions in outputs]

    assert all(finish_reason == "length" for _, finish_reason in answers(48)), "the old budget cut them short"
    for text, finish_reason in answers(DEMO_MAX_TOKENS):
        assert finish_reason == "stop", f"cut at {DEMO_MAX_TOKENS} tokens: …{text[-80:]}"
        assert SENTENCE_END.search(text), f"does not end a sentence: …{text[-80:]}"

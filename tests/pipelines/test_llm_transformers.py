"""TransformersBackend: n samples per prompt, seeds, stop strings, token counts, chat template, real answers."""

from __future__ import annotations

import pytest

from pipelines.llm.types import SamplingParams

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, device="cpu", batch_size=8)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def real_backend(embedded_model_dir):
    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(embedded_model_dir, device="cpu")
    yield backend
    backend.close()


def _texts(results):
    return [[completion.text for completion in samples] for samples in results]


def test_every_prompt_gets_n_samples_from_one_encoding_and_one_prefill(tiny_backend, monkeypatch):
    from pipelines.llm.prompt_batches import shared_prefix_length

    generate_calls, prompt_forwards = [], []
    generate, forward = tiny_backend.model.generate, tiny_backend.model.forward

    def recording_generate(**kwargs):
        cached_tokens = kwargs["past_key_values"].get_seq_length()
        generate_calls.append(
            (kwargs["input_ids"].shape, kwargs["generation_config"].num_return_sequences, cached_tokens)
        )
        return generate(**kwargs)

    def recording_forward(*args, **kwargs):
        if kwargs["past_key_values"].get_seq_length() == 0 or kwargs["input_ids"].shape[1] > 1:  # not a decoding step
            prompt_forwards.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_backend.model, "generate", recording_generate)
    monkeypatch.setattr(tiny_backend.model, "forward", recording_forward)
    conversations = [[{"role": "user", "content": f"Question {i}?" + " more" * i}] for i in range(3)]
    results = tiny_backend.chat(conversations, SamplingParams(n=4, temperature=1.0, max_tokens=5, seed=1))

    assert [len(samples) for samples in results] == [4, 4, 4]
    # batch_size=8 sequences -> 2 prompts per generate call (the two longest first); each prompt runs
    # through the model once (all but its last token), and its 4 samples decode from copies of that cache.
    assert [(shape[0], repeats) for shape, repeats, _ in generate_calls] == [(8, 1), (4, 1)]
    widths = [shape[1] for shape, _, _ in generate_calls]
    # The chat template's system prompt opens both prompts of the first batch: it runs once, as one row.
    tokenizer = tiny_backend.tokenizer
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]  # as the backend encodes them
    shared = shared_prefix_length([encoded[2], encoded[1]])
    assert shared >= 8
    assert prompt_forwards == [(1, shared), (2, widths[0] - 1 - shared), (1, widths[1] - 1)]
    assert [cached_tokens for _, _, cached_tokens in generate_calls] == [width - 1 for width in widths]
    assert all(0 < completion.completion_tokens <= 5 for samples in results for completion in samples)
    assert len({text for text in _texts(results)[0]}) > 1, "sampling should give different samples"


@pytest.mark.parametrize(
    "texts",
    [
        ("a much longer prompt than the other", "short"),
        # A common prefix of more than 8 tokens, then rests of different lengths (padding in the middle).
        (
            "You are a careful assistant. Answer briefly and exactly. Question: why is the sky blue today?",
            "You are a careful assistant. Answer briefly and exactly. Question: why?",
            "You are a careful assistant. Answer briefly and exactly. Question: what is two plus two, and why?",
        ),
    ],
    ids=["no-shared-prefix", "shared-prefix"],
)
def test_prefill_gives_each_prompt_the_logits_of_its_own_full_forward_pass(tiny_backend, texts):
    import torch

    from pipelines.llm.prompt_batches import pad_behind_prefix, shared_prefix_length

    prompts = [tiny_backend.tokenizer(text)["input_ids"] for text in texts]
    shared = shared_prefix_length(prompts)
    assert (shared > 0) == (len(texts) == 3)
    input_ids, mask = pad_behind_prefix(prompts, shared, tiny_backend.pad_token_id)
    width = input_ids.shape[1]
    with torch.inference_mode():
        cache = tiny_backend._new_cache(capacity=width + 4)  # grows in place on the CPU
        cache = tiny_backend._prefill(input_ids, mask, shared, 3, cache)
        assert cache.get_seq_length() == width - 1
        mask = mask.repeat_interleave(3, dim=0)
        positions = (mask.cumsum(-1) - 1)[:, -1:]
        last = tiny_backend.model(
            input_ids=input_ids[:, -1:].repeat_interleave(3, dim=0),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
        ).logits[:, -1]
        for index, tokens in enumerate(prompts):
            alone = tiny_backend.model(input_ids=torch.tensor([tokens])).logits[0, -1]
            for sample in range(3):
                torch.testing.assert_close(last[index * 3 + sample], alone, atol=1e-4, rtol=1e-4)


def test_kv_cache_budget_splits_long_prompts_into_smaller_batches_with_the_same_answers(tiny_model_dir, monkeypatch):
    from pipelines.llm.transformers_backend import TransformersBackend, kv_cache_bytes_per_position

    prompts = ["word " * 60, "word " * 50, "a b", "c d"]
    params = SamplingParams(temperature=0, max_tokens=4)
    unbounded = TransformersBackend(tiny_model_dir, batch_size=8)
    config = unbounded.model.config
    per_position = kv_cache_bytes_per_position(config, 4)
    assert per_position == 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 4
    # Room for one row of the longest prompt (~61 tokens + 4 new) but not two.
    bounded = TransformersBackend(tiny_model_dir, batch_size=8, kv_cache_bytes=per_position * 100)
    rows_per_call = []
    generate = bounded.model.generate

    def recording_generate(**kwargs):
        rows_per_call.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    monkeypatch.setattr(bounded.model, "generate", recording_generate)
    try:
        assert _texts(bounded.complete(prompts, params)) == _texts(unbounded.complete(prompts, params))
    finally:
        bounded.close()
        unbounded.close()
    assert rows_per_call == [1, 1, 2]


def test_greedy_answers_do_not_depend_on_the_prompts_batched_with_them(tiny_backend):
    """A shared prefix, padding in the middle and the batch's other rows change nothing: same greedy text alone."""
    prefix = "You are a careful assistant. Answer briefly and exactly. Question: "
    prompts = [prefix + "why is the sky blue?", prefix + "what is 2+2?", prefix + "name a color that rhymes."]
    params = SamplingParams(temperature=0, max_tokens=8)
    together = _texts(tiny_backend.complete(prompts, params))
    alone = [_texts(tiny_backend.complete([prompt], params))[0] for prompt in prompts]
    assert together == alone


def test_stop_strings_are_only_checked_when_given_and_threads_are_set_on_every_call(tiny_model_dir, monkeypatch):
    import torch

    from pipelines.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(tiny_model_dir, batch_size=4, torch_threads=1)
    seen = []
    generate = backend.model.generate

    def recording_generate(**kwargs):
        seen.append((kwargs["tokenizer"], kwargs["generation_config"].stop_strings, torch.get_num_threads()))
        return generate(**kwargs)

    monkeypatch.setattr(backend.model, "generate", recording_generate)
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # what a training job in the same worker would leave behind
        backend.complete(["Hi"], SamplingParams(max_tokens=2, seed=0))
        backend.complete(["Hi"], SamplingParams(max_tokens=2, seed=0, stop=("\n",)))
    finally:
        torch.set_num_threads(threads_before)
        backend.close()
    assert seen[0] == (None, None, 1)
    assert seen[1][0] is backend.tokenizer and seen[1][1:] == (["\n"], 1)


def test_same_seed_and_inputs_give_the_same_text_and_another_seed_differs(tiny_backend):
    prompts = ["Once upon a time", "The weather today"]
    first = tiny_backend.complete(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=11))
    # Something else runs in between: the seed alone must fix the draw.
    tiny_backend.complete(["unrelated"], SamplingParams(n=2, temperature=1.0, max_tokens=4))
    again = tiny_backend.complete(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=11))
    other = tiny_backend.complete(prompts, SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=12))
    assert _texts(first) == _texts(again)
    assert _texts(first) != _texts(other)


def test_temperature_zero_is_greedy_and_deterministic_without_a_seed(tiny_backend):
    params = SamplingParams(n=3, temperature=0, max_tokens=6)
    first = tiny_backend.complete(["Hello there", "A"], params)
    second = tiny_backend.complete(["A", "Hello there"], params)
    assert _texts(first) == _texts(second)[::-1]
    assert all(len(set(samples)) == 1 for samples in _texts(first))


def test_prompt_and_completion_token_counts_are_exact(tiny_backend):
    prompts = ["one", "one two three four five six"]
    results = tiny_backend.complete(prompts, SamplingParams(n=2, temperature=1.0, max_tokens=7, seed=3))
    for prompt, samples in zip(prompts, results, strict=True):
        expected_prompt_tokens = len(tiny_backend.tokenizer(prompt)["input_ids"])
        for completion in samples:
            assert completion.prompt_tokens == expected_prompt_tokens
            # A random model rarely emits the end token: these run to the limit.
            if completion.finish_reason == "length":
                assert completion.completion_tokens == 7
                assert len(tiny_backend.tokenizer(completion.text, add_special_tokens=False)["input_ids"]) <= 7


def test_stop_string_truncates_the_text_and_finishes_with_stop(tiny_backend):
    params = SamplingParams(n=2, temperature=1.0, max_tokens=12, seed=5)
    unstopped = tiny_backend.complete(["Tell me"], params)[0][0]
    assert unstopped.finish_reason == "length" and len(unstopped.text) > 4
    # Stop on a piece of what the model is going to say anyway (same seed, same first sample).
    stop = unstopped.text[len(unstopped.text) // 2 : len(unstopped.text) // 2 + 2]
    stopped = tiny_backend.complete(["Tell me"], SamplingParams(**{**params.to_dict(), "stop": (stop,)}))[0][0]
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text
    assert unstopped.text.startswith(stopped.text)
    assert stopped.completion_tokens < unstopped.completion_tokens


def test_chat_applies_the_chat_template_with_the_generation_prompt(tiny_backend):
    template_text = tiny_backend.tokenizer.apply_chat_template(QUESTION, tokenize=False, add_generation_prompt=True)
    assert template_text.endswith("<|im_start|>assistant\n")
    greedy = SamplingParams(temperature=0, max_tokens=6)
    via_chat = tiny_backend.chat([QUESTION], greedy)[0][0]
    via_complete = tiny_backend.complete([template_text], greedy)[0][0]
    assert via_chat.prompt_tokens == len(tiny_backend.tokenizer(template_text, add_special_tokens=False)["input_ids"])
    assert via_chat.text == via_complete.text


def test_backend_reports_its_name_and_load_time(tiny_backend, tiny_model_dir):
    assert tiny_backend.name == tiny_model_dir.name
    assert tiny_backend.load_seconds > 0


@pytest.mark.slow
def test_real_embedded_model_answers_a_question(real_backend):
    answer = real_backend.chat([QUESTION], SamplingParams(temperature=0, max_tokens=12))[0][0]
    assert "Paris" in answer.text
    assert answer.completion_tokens <= 12 and answer.prompt_tokens > 10


@pytest.mark.slow
def test_real_embedded_model_samples_n_answers_that_end_by_eos_with_exact_counts(real_backend):
    samples = real_backend.chat(
        [[{"role": "user", "content": "Say just the word yes."}]],
        SamplingParams(n=3, temperature=0.7, max_tokens=16, seed=0),
    )[0]
    assert len(samples) == 3 and all(sample.text.strip() for sample in samples)
    for sample in samples:
        if sample.finish_reason == "stop":  # ended with <|im_end|>, which counts as a generated token
            assert (
                sample.completion_tokens
                == len(real_backend.tokenizer(sample.text, add_special_tokens=False)["input_ids"]) + 1
            )


def test_next_token_logprobs_are_each_prompts_own_distribution_and_include_the_asked_tokens(tiny_backend):
    import math

    import torch

    from pipelines.llm.types import supports_next_token_logprobs

    assert supports_next_token_logprobs(tiny_backend)
    conversations = [
        [{"role": "user", "content": "You are a careful judge. Answer A or B. Which is better, one or two?"}],
        [{"role": "user", "content": "You are a careful judge. Answer A or B. Which?"}],
        [{"role": "user", "content": "short"}],
    ]
    reported = tiny_backend.chat_next_token_logprobs(conversations, top_k=3, always_include=("A", "B"))
    for conversation, logprobs in zip(conversations, reported, strict=True):
        text = tiny_backend.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        tokens = tiny_backend.tokenizer(text, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            alone = torch.log_softmax(
                tiny_backend.model(input_ids=torch.tensor([tokens])).logits[0, -1].float(), dim=-1
            )
        top = torch.topk(alone, 3).indices.tolist()
        for token_id in top:
            assert logprobs[tiny_backend.tokenizer.decode([token_id])] == pytest.approx(
                float(alone[token_id]), abs=1e-4
            )
        # A random model has no reason to rank A or B in its top 3: they are reported all the same,
        # every vocabulary entry that decodes to them ("A" and " A" are separate texts).
        for token_id in tiny_backend._token_ids_decoding_to(("A", "B")):
            assert logprobs[tiny_backend.tokenizer.decode([token_id])] == pytest.approx(
                float(alone[token_id]), abs=1e-4
            )
        assert {"A", "B"} <= set(logprobs) and all(value <= 0 and math.isfinite(value) for value in logprobs.values())

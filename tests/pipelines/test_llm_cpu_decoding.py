"""CPU decoding tricks: packed linear weights and the in-place KV cache compute what the plain model computes."""

from __future__ import annotations

import pytest
import torch

from pipelines.llm.cpu_decoding import (
    GROUPED_SDPA,
    GrowingCacheLayer,
    PackedLinear,
    grouped_sdpa,
    growing_cache,
    pack_linear_weights,
    use_grouped_attention,
)

pytestmark = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@pytest.fixture(scope="module")
def plain_and_packed(tiny_model_dir):
    """The tiny random model twice: as transformers loads it, and with every CPU decoding trick applied."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    packed = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    linear_count = sum(type(module) is torch.nn.Linear for module in packed.modules())
    assert pack_linear_weights(packed, batch_hint=8) == linear_count > 0
    assert use_grouped_attention(packed) and packed.config._attn_implementation == GROUPED_SDPA
    assert packed.config.num_key_value_heads < packed.config.num_attention_heads, "the tiny model must use GQA"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    return plain, packed, tokenizer


@pytest.mark.parametrize("rows", [1, 3, 32, 300])
def test_packed_linear_matches_nn_linear_for_any_number_of_rows_and_leading_dimensions(rows):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48, bias=True)
    packed = PackedLinear(linear, batch_hint=32)
    with torch.inference_mode():
        for inputs in (torch.randn(rows, 64), torch.randn(2, rows, 64)):
            torch.testing.assert_close(packed(inputs), linear(inputs), atol=1e-5, rtol=1e-4)


def test_packing_replaces_every_linear_keeps_the_tied_embedding_and_releases_the_plain_weights(plain_and_packed):
    plain, packed, _ = plain_and_packed
    assert not any(type(module) is torch.nn.Linear for module in packed.modules())
    assert isinstance(packed.lm_head, PackedLinear)
    torch.testing.assert_close(packed.get_input_embeddings().weight, plain.get_input_embeddings().weight)
    # The decoder's projections are no longer parameters: only embeddings and norms remain.
    assert sum(p.numel() for p in packed.parameters()) < sum(p.numel() for p in plain.parameters())


def test_packing_leaves_float16_models_alone(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float16)
    assert pack_linear_weights(model, batch_hint=8) == 0
    assert any(type(module) is torch.nn.Linear for module in model.modules())


def test_bfloat16_models_are_packed_where_the_cpu_has_bfloat16_kernels_and_compute_the_same(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).eval()
    packed = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).eval()
    packed_count = pack_linear_weights(packed, batch_hint=8)
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert packed_count == 0
        return
    assert packed_count == sum(type(module) is torch.nn.Linear for module in plain.modules()) > 0
    assert isinstance(packed.lm_head, PackedLinear) and packed.lm_head.packed_weight.dtype == torch.bfloat16
    tokens = torch.randint(0, plain.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits_plain, logits_packed = plain(input_ids=tokens).logits, packed(input_ids=tokens).logits
    # Both accumulate in float32 and round to bfloat16: the same up to bfloat16's ~3 significant digits.
    torch.testing.assert_close(logits_packed.float(), logits_plain.float(), atol=0.05, rtol=0.02)


def test_packed_model_with_growing_cache_and_grouped_prompt_attention_matches_the_plain_model(plain_and_packed):
    plain, packed, tokenizer = plain_and_packed
    batch = tokenizer(
        ["a much longer prompt than the others here", "short", "mid sized one"], padding=True, return_tensors="pt"
    )
    settings = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        expected = plain.generate(**batch, **settings)
        capacity = batch["input_ids"].shape[1] + settings["max_new_tokens"]
        cache = growing_cache(packed.config, capacity)
        got = packed.generate(**batch, past_key_values=cache, **settings)
        logits_plain = plain(**batch).logits
        logits_packed = packed(**batch).logits
    assert torch.equal(got, expected)
    torch.testing.assert_close(logits_packed, logits_plain, atol=1e-4, rtol=1e-4)
    # One prompt, no padding: decoding steps attend without any mask.
    single = tokenizer(["one prompt without padding"], return_tensors="pt")
    with torch.inference_mode():
        expected_single = plain.generate(**single, **settings)
        got_single = packed.generate(**single, past_key_values=growing_cache(packed.config, 64), **settings)
    assert torch.equal(got_single, expected_single)
    assert all(isinstance(layer, GrowingCacheLayer) for layer in cache.layers)
    # Every step wrote into the one buffer planned for the prompt and its new tokens.
    assert all(layer.capacity == capacity for layer in cache.layers)
    assert cache.get_seq_length() == got.shape[1] - 1


def _filled_layer(capacity: int, length: int, batch: int = 2) -> tuple[GrowingCacheLayer, torch.Tensor, torch.Tensor]:
    layer = GrowingCacheLayer(capacity)
    keys, values = torch.randn(batch, 3, length, 4), torch.randn(batch, 3, length, 4)
    for position in range(length):
        layer.update(keys[:, :, position : position + 1], values[:, :, position : position + 1])
    return layer, keys, values


def test_growing_layer_writes_in_place_and_returns_only_the_filled_positions():
    layer, keys, values = _filled_layer(capacity=8, length=5)
    buffer = layer.keys.data_ptr()
    assert layer.get_seq_length() == 5
    torch.testing.assert_close(layer.keys, keys)
    torch.testing.assert_close(layer.values, values)
    layer.update(torch.ones(2, 3, 1, 4), torch.ones(2, 3, 1, 4))
    assert layer.keys.data_ptr() == buffer and layer.keys.shape[-2] == 6


def test_growing_layer_doubles_past_its_capacity_and_keeps_what_it_held():
    layer, keys, values = _filled_layer(capacity=4, length=4)
    extra = torch.randn(2, 3, 3, 4)
    layer.update(extra, extra)
    assert layer.capacity == 8
    torch.testing.assert_close(layer.keys, torch.cat([keys, extra], dim=-2))
    torch.testing.assert_close(layer.values, torch.cat([values, extra], dim=-2))


def test_growing_layer_survives_crop_batch_selection_repetition_and_reset():
    layer, keys, values = _filled_layer(capacity=10, length=6)
    layer.crop(-2)  # a view of the same buffer: the next token overwrites position 4
    step = torch.full((2, 3, 1, 4), 7.0)
    layer.update(step, step)
    torch.testing.assert_close(layer.keys, torch.cat([keys[:, :, :4], step], dim=-2))

    layer.batch_repeat_interleave(2)  # replaced from outside: moved to a new buffer on the next update
    step = torch.full((4, 3, 1, 4), 9.0)
    layer.update(step, step)
    expected = torch.cat(
        [torch.cat([keys[:, :, :4], torch.full((2, 3, 1, 4), 7.0)], -2).repeat_interleave(2, 0), step], -2
    )
    torch.testing.assert_close(layer.keys, expected)

    layer.batch_select_indices(torch.tensor([0, 3]))
    step = torch.zeros(2, 3, 1, 4)
    layer.update(step, step)
    torch.testing.assert_close(layer.keys, torch.cat([expected[[0, 3]], step], -2))

    layer.reset()
    fresh = torch.randn(1, 3, 2, 4)
    layer.update(fresh, fresh)
    torch.testing.assert_close(layer.values, fresh)


@pytest.mark.parametrize("positions", [1, 4])
def test_grouped_attention_leaves_what_it_does_not_handle_to_transformers(positions):
    """Soft-capping is refused by transformers' SDPA: it must not be silently dropped on our paths."""
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    query, key = torch.randn(2, 6, positions, 8), torch.randn(2, 2, 5, 8)
    mask = torch.ones(2, 1, positions, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match="softcap"):
        grouped_sdpa(module, query, key, key, mask, softcap=30.0)

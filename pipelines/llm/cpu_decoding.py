"""Faster CPU inference: prepacked linear weights, a KV cache grown in place, grouped attention for prompts.

Why (measured by `bench/generation.py` and a profile of a batch-32 decoding step of SmolLM2-135M on
the 2-core CPU; figures in docs/operators.md):
- `nn.Linear` on CPU hands MKL a transposed weight for every call. At decoding shapes (32 rows
  against a 576x49,152 output head) that ran at 40-50 GFLOP/s, against 100-150 for the same product
  through oneDNN with the weight reordered once, at load, into the blocked layout its kernels read.
  The output head alone took ~37 ms of a step; packed, ~17 ms.
- `DynamicCache` appends each step's keys and values with `torch.cat`: every layer copies its whole
  cache into a newly allocated tensor, twice, every step. That was 10-14% of a step (the copies, and
  the page faults of the fresh allocations). `GrowingCacheLayer` writes each step into a buffer
  sized for the prompt and its new tokens and hands attention a view of the filled part, so
  attention still reads only what is there (a static cache makes it read the whole capacity).
- For a prompt (more than one query position) with a padding mask, transformers' SDPA path copies
  every key/value head once per query head of its group (`repeat_kv`) before attention: for a batch
  of 32 few-shot prompts of ~300 tokens that copying was a quarter of the prefill. Torch's kernel
  does grouped-query attention itself (`enable_gqa`); `GROUPED_SDPA` asks it to for prompts and
  folds the group's query heads into rows for single-token decoding steps (`grouped_decoding_step`),
  as transformers does where a padding mask is given; without one, transformers would ask torch's
  `enable_gqa` path, which on the CPU in bfloat16 is 7x slower.

All of it only changes how the same arithmetic is laid out: outputs match the plain model to
float32 rounding (tested). Packing is for inference only: the packed weights have no gradient.
bfloat16 models are packed too where the CPU has bfloat16 kernels: on AVX512-BF16 (measured on a
2-core AMD EPYC) their products run at twice the float32 rate and stream half the bytes, ~1.5x
the float32 tokens/s at batch 32, at bfloat16's precision (a per-model choice: the registry's dtype).
"""

from __future__ import annotations

import logging

import torch
from transformers import AttentionInterface, DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

logger = logging.getLogger(__name__)


class PackedLinear(torch.nn.Module):
    """`nn.Linear` for inference whose weight oneDNN reordered once into its own blocked layout."""

    def __init__(self, linear: torch.nn.Linear, batch_hint: int) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # The hint picks the kernel's blocking; any number of rows is still computed correctly.
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), batch_hint)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(inputs, self.packed_weight, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def can_pack_linears(model: torch.nn.Module) -> bool:
    """Whether `pack_linear_weights` applies: a torch built with oneDNN, and weights on the CPU in
    float32, or in bfloat16 where oneDNN has bfloat16 kernels for this CPU (AVX512-BF16, AMX)."""
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    if parameter.dtype == torch.float32:
        return True
    return parameter.dtype == torch.bfloat16 and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def pack_linear_weights(model: torch.nn.Module, batch_hint: int) -> int:
    """Replace every `nn.Linear` of an inference model by a `PackedLinear`; returns how many were packed.

    The plain weights are released as each layer is replaced (a weight tied to the input embeddings
    stays, held by the embedding), so memory grows by at most the tied output head. Nothing is
    changed, and 0 returned, where `can_pack_linears` says no or oneDNN refuses a weight.
    """
    if not can_pack_linears(model):
        return 0
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is torch.nn.Linear
    ]
    try:
        replacements = [(parent, name, PackedLinear(child, batch_hint)) for parent, name, child in targets]
    except RuntimeError as error:  # a torch whose oneDNN lacks the op for this CPU: keep the plain model
        logger.warning("linear weights left unpacked: %s", error)
        return 0
    for parent, name, packed in replacements:
        setattr(parent, name, packed)
    _copy_out_of_the_weights_file(model)
    return len(replacements)


def _copy_out_of_the_weights_file(model: torch.nn.Module) -> None:
    """Give the parameters and buffers that stay (embeddings, norms) memory of their own.

    transformers maps the safetensors file and its tensors point into that mapping; once the
    linear weights were read for packing, all of the file counts in the process's RSS for as long as
    any tensor still points into it. Copying the few tensors left lets the mapping go: for
    SmolLM2-135M that is ~540 MB less resident memory in every worker holding the model.
    """
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor.data = tensor.data.clone()


class GrowingCacheLayer(DynamicLayer):
    """A `DynamicLayer` that writes new keys and values into a preallocated buffer instead of concatenating.

    `keys` and `values` stay what `DynamicLayer` promises (the filled positions, shape
    [batch, heads, length, head_dim]); they are views of buffers of `capacity` positions. When
    anything outside replaces them (beam reordering, batch selection, repetition) or a step
    overflows the buffer, the next update moves them into a fresh buffer, so every `DynamicLayer`
    operation stays valid.
    """

    def __init__(self, capacity: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.capacity = capacity
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.get_seq_length()
        needed = length + key_states.shape[-2]
        if not self._writes_in_place(key_states, needed):
            self._move_to_new_buffers(key_states, value_states, length, needed)
        self._key_buffer[:, :, length:needed] = key_states
        self._value_buffer[:, :, length:needed] = value_states
        self.keys = self._key_buffer[:, :, :needed]
        self.values = self._value_buffer[:, :, :needed]
        return self.keys, self.values

    def _writes_in_place(self, key_states: torch.Tensor, needed: int) -> bool:
        """The buffers exist, still back `keys`/`values` (a crop keeps them), fit this batch and have room."""
        buffer = self._key_buffer
        if buffer is None or needed > buffer.shape[-2]:
            return False
        if buffer.shape[:2] != key_states.shape[:2] or buffer.shape[-1] != key_states.shape[-1]:
            return False
        if self.keys.numel() == 0:
            return True
        return self.keys.data_ptr() == buffer.data_ptr() and self.values.data_ptr() == self._value_buffer.data_ptr()

    def _move_to_new_buffers(
        self, key_states: torch.Tensor, value_states: torch.Tensor, length: int, needed: int
    ) -> None:
        # Past the planned capacity (a caller decoding longer than it said): double, like a list.
        capacity = self.capacity if needed <= self.capacity else max(needed, 2 * length)
        key_buffer, value_buffer = _empty_buffers(key_states, value_states, key_states.shape[0], capacity)
        if length:
            key_buffer[:, :, :length] = self.keys
            value_buffer[:, :, :length] = self.values
        self._key_buffer, self._value_buffer = key_buffer, value_buffer
        self.capacity = capacity

    def batch_repeat_interleave(self, repeats: int) -> None:
        """Repeat every row `repeats` times straight into new full-capacity buffers (one copy, not two)."""
        length = self.get_seq_length()
        if length == 0 or repeats == 1:
            return
        batch = self.keys.shape[0]
        key_buffer, value_buffer = _empty_buffers(self.keys, self.values, batch * repeats, max(self.capacity, length))
        # Row b of the old cache becomes rows b*repeats .. b*repeats+repeats-1: a broadcast copy.
        key_buffer.view(batch, repeats, *key_buffer.shape[1:])[:, :, :, :length] = self.keys[:, None]
        value_buffer.view(batch, repeats, *value_buffer.shape[1:])[:, :, :, :length] = self.values[:, None]
        self._key_buffer, self._value_buffer = key_buffer, value_buffer
        self.keys, self.values = key_buffer[:, :, :length], value_buffer[:, :, :length]

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        super().reset()


def _empty_buffers(
    keys: torch.Tensor, values: torch.Tensor, rows: int, capacity: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uninitialized key and value buffers of `rows` x `capacity` positions, heads and dims as `keys`/`values`."""
    return (
        keys.new_empty((rows, keys.shape[1], capacity, keys.shape[-1])),
        values.new_empty((rows, values.shape[1], capacity, values.shape[-1])),
    )


def growing_cache(config, capacity: int) -> DynamicCache:
    """A `DynamicCache` for `config` whose plain full-attention layers grow in place up to `capacity` positions.

    Layers of other kinds (sliding windows, linear attention) keep transformers' own classes.
    """
    cache = DynamicCache(config=config)
    cache.layers = [GrowingCacheLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


GROUPED_SDPA = "refinery_grouped_sdpa"
"""The attention implementation `use_grouped_attention` gives a model: transformers' SDPA, with grouped
key/value heads read in place (torch's grouped-query attention for prompts, folded query heads for
decoding steps)."""


def grouped_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA over grouped key/value heads without copying them: torch's grouped-query attention for
    several query positions with a mask, folded query heads for one position (a decoding step).

    Everything else (models without groups, masks left to `is_causal`, per-head masks, position
    biases, soft-capping, paged caches) goes to transformers' `sdpa_attention_forward` unchanged.
    """
    if kwargs.get("softcap") is not None:
        # SDPA has no soft-capping, and some transformers releases drop it silently: refuse, never decode wrongly.
        raise ValueError(
            "SDPA cannot apply attention logit soft-capping (softcap); load this model with eager attention"
        )
    groups = getattr(module, "num_key_value_groups", 1)
    # Logit soft-capping (refused by transformers' SDPA), position biases and paged caches: transformers decides.
    special = any(kwargs.get(name) is not None for name in ("softcap", "position_bias", "cache"))
    one_mask_for_all_heads = attention_mask is None or attention_mask.shape[1] == 1
    if query.shape[2] == 1 and groups > 1 and one_mask_for_all_heads and not special:
        return grouped_decoding_step(query, key, value, attention_mask, dropout, scaling), None
    if query.shape[2] == 1 or groups == 1 or attention_mask is None or special:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True
    )
    return output.transpose(1, 2).contiguous(), None


def grouped_decoding_step(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float,
    scaling: float | None,
) -> torch.Tensor:
    """Attention of one new position per row with the query heads of each group folded into rows.

    The heads sharing a key/value head become that head's query rows, so each key/value head is
    read once and torch's `enable_gqa` path is never taken: on the CPU in bfloat16 that path ran
    at 1.3 ms a layer against 0.18 ms folded (5 rows, 600 positions), which made the AFT pattern
    slower in bfloat16 than in float32. Returns [batch, 1, heads, head_dim], as transformers expects.
    """
    batch, heads, _, head_dim = query.shape
    kv_heads = key.shape[1]
    folded = query.reshape(batch, kv_heads, heads // kv_heads, head_dim)
    output = torch.nn.functional.scaled_dot_product_attention(
        folded, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling
    )
    return output.reshape(batch, 1, heads, head_dim)


def use_grouped_attention(model: torch.nn.Module) -> bool:
    """Switch a model that runs transformers' SDPA to `GROUPED_SDPA`; True if it did."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(GROUPED_SDPA, grouped_sdpa)
    AttentionMaskInterface.register(GROUPED_SDPA, sdpa_mask)
    model.set_attn_implementation(GROUPED_SDPA)
    return True

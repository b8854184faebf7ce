"""Which dtype a model runs in on this CPU when its registry entry says "auto".

On CPUs with bfloat16 matrix kernels (AVX512-BF16, or AMX on recent Xeons) oneDNN multiplies
bfloat16 at about twice the float32 rate and decoding streams half the weight bytes:
bench/generation.py and bench/llama_cpp_peer.py measured 1.3-1.5x the float32 tokens/s on 2-core
AMD EPYC VMs with AVX512-BF16. bfloat16 keeps 8 bits of mantissa, so the model's distributions
move a little. We take bfloat16 only where the move is measured small: the mean next-token KL
divergence from the float32 model to the bfloat16 one, over every position of a few fixed probe
prompts, must stay at or below `BFLOAT16_KL_LIMIT`. The check runs each time a backend loads a
model with "auto", on the model just loaded (a few forward passes of the probe prompts, about a
second for a 135M model), so a model that bfloat16 harms (large activations, odd weights) stays
in float32.

A registry entry's dtype ("float32", "bfloat16") always wins: the check is only for "auto".
`REFINERY_CPU_DTYPE` (auto | float32 | bfloat16) sets what "auto" means for a whole worker; the
test suite pins it to float32 so results do not depend on which CPU a run lands on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pipelines.errors import InvalidConfigError

logger = logging.getLogger(__name__)

CPU_DTYPE_SETTING = "REFINERY_CPU_DTYPE"
CPU_DTYPE_CHOICES = ("auto", "float32", "bfloat16")
BFLOAT16_KL_LIMIT = 0.01
"""Nats of mean next-token KL(float32 || bfloat16) a model may lose to run in bfloat16.

The bundled SmolLM2-135M-Instruct measures 0.0032 on the probe prompts (the top token the same at
97% of positions) on a 2-core AMD EPYC with AVX512-BF16: the limit leaves it a factor of three, and
a model whose bfloat16 copy moves several times further stays in float32.
"""
PROBE_PROMPTS = (
    "Explain why the sky is blue.",
    "Write a short poem about the sea.",
    "What are three tips for learning a new language?",
    "Summarize the plot of Romeo and Juliet in two sentences.",
)


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype a CPU backend runs in, and why (shown in the worker log and the benchmark)."""

    dtype: str
    reason: str
    mean_kl: float | None = None
    max_kl: float | None = None
    top1_agreement: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags() -> set[str]:
    """This CPU's feature flags as /proc/cpuinfo lists them (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(flags_line.split(":", 1)[-1].split())


def cpu_bfloat16_flags() -> list[str]:
    """The CPU flags that give oneDNN bfloat16 kernels (empty where /proc/cpuinfo lacks them)."""
    return sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16_kernels() -> bool:
    """Whether oneDNN in this torch multiplies bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_dtype_setting() -> str:
    """What "auto" means on the CPU for this process (`REFINERY_CPU_DTYPE`, default auto)."""
    value = (os.environ.get(CPU_DTYPE_SETTING) or "auto").strip().lower()
    if value not in CPU_DTYPE_CHOICES:
        raise InvalidConfigError(f"{CPU_DTYPE_SETTING}={value!r} is not one of {', '.join(CPU_DTYPE_CHOICES)}")
    return value


def _probe_inputs(tokenizer: Any, prompts: tuple[str, ...]) -> list[torch.Tensor]:
    """The probe prompts' token ids, one tensor each (no padding: every position is real), chat-templated
    where the tokenizer has a template."""
    if getattr(tokenizer, "chat_template", None):
        prompts = tuple(
            tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts
        )
    return [tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"] for text in prompts]


def _next_token_log_probs(model: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Float32 log-softmax of the model's logits at every position of each input."""
    with torch.inference_mode():
        return [torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1) for ids in inputs]


def next_token_kl(reference: list[torch.Tensor], candidate: list[torch.Tensor]) -> dict[str, float]:
    """KL(reference || candidate) of next-token log-probabilities (as `_next_token_log_probs` gives them).

    Returns the mean and the largest KL over all positions, in nats, and the share of positions where
    both put the same token first.
    """
    divergence = torch.cat(
        [(ref.exp() * (ref - cand)).sum(dim=-1) for ref, cand in zip(reference, candidate, strict=True)]
    )
    agreement = torch.cat(
        [ref.argmax(dim=-1) == cand.argmax(dim=-1) for ref, cand in zip(reference, candidate, strict=True)]
    )
    return {
        "mean_kl": round(float(divergence.mean()), 5),
        "max_kl": round(float(divergence.max()), 5),
        "top1_agreement": round(float(agreement.float().mean()), 4),
    }


def choose_cpu_dtype(
    model: torch.nn.Module,
    tokenizer: Any,
    *,
    reload_float32: Callable[[], torch.nn.Module],
    kl_limit: float = BFLOAT16_KL_LIMIT,
) -> tuple[torch.nn.Module, DtypeChoice]:
    """`model` (float32, on the CPU) kept, or converted to bfloat16 in place, by `REFINERY_CPU_DTYPE` and
    the KL check.

    The check keeps the float32 model's probe log-probabilities (a few MB), not a second copy of the
    model, so a large model never sits in memory twice. When bfloat16 fails the check, the rounded
    weights cannot be turned back, so the float32 model comes from `reload_float32` (its files again).
    """
    setting = cpu_dtype_setting()
    if setting == "float32":
        return model, DtypeChoice("float32", f"{CPU_DTYPE_SETTING}=float32")
    if not cpu_has_bfloat16_kernels():
        if setting == "bfloat16":
            raise InvalidConfigError(
                f"{CPU_DTYPE_SETTING}=bfloat16, but this CPU has no bfloat16 kernels (AVX512-BF16 or AMX)"
            )
        return model, DtypeChoice("float32", "this CPU has no bfloat16 kernels (AVX512-BF16 or AMX)")
    if setting == "bfloat16":
        return model.to(torch.bfloat16), DtypeChoice("bfloat16", f"{CPU_DTYPE_SETTING}=bfloat16")
    inputs = _probe_inputs(tokenizer, PROBE_PROMPTS)
    reference = _next_token_log_probs(model, inputs)
    model.to(torch.bfloat16)
    measured = next_token_kl(reference, _next_token_log_probs(model, inputs))
    flags = ", ".join(cpu_bfloat16_flags()) or "bfloat16 kernels"
    if measured["mean_kl"] <= kl_limit:
        reason = f"{flags}: bfloat16's mean next-token KL to float32 is {measured['mean_kl']} nats (limit {kl_limit})"
        logger.info("running in bfloat16: %s", reason)
        return model, DtypeChoice("bfloat16", reason, **measured)
    reason = (
        f"{flags}, but bfloat16's mean next-token KL to float32 is {measured['mean_kl']} nats, over the "
        f"limit of {kl_limit}"
    )
    logger.info("running in float32: %s", reason)
    return reload_float32().eval(), DtypeChoice("float32", reason, **measured)

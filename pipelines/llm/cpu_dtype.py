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

import copy
import logging
import os
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


def cpu_bfloat16_flags() -> list[str]:
    """The CPU flags that give oneDNN bfloat16 kernels (empty where /proc/cpuinfo lacks them)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[-1].split())
    return sorted(flags & {"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16_kernels() -> bool:
    """Whether oneDNN in this torch multiplies bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_dtype_setting() -> str:
    """What "auto" means on the CPU for this process (`REFINERY_CPU_DTYPE`, default auto)."""
    value = (os.environ.get(CPU_DTYPE_SETTING) or "auto").strip().lower()
    if value not in CPU_DTYPE_CHOICES:
        raise InvalidConfigError(f"{CPU_DTYPE_SETTING}={value!r} is not one of {', '.join(CPU_DTYPE_CHOICES)}")
    return value


def next_token_kl(
    reference: torch.nn.Module, candidate: torch.nn.Module, tokenizer: Any, prompts: tuple[str, ...] = PROBE_PROMPTS
) -> dict[str, float]:
    """KL(reference || candidate) of the next-token distributions at every real position of `prompts`.

    Returns the mean and the largest KL in nats and the share of positions where both models'
    most likely token agree. Prompts are chat-templated where the tokenizer has a template.
    """
    if getattr(tokenizer, "chat_template", None):
        texts = [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]
    else:
        texts = list(prompts)
    divergences, agreements = [], []
    with torch.inference_mode():
        for text in texts:  # one prompt at a time: no padding, so every position is real
            input_ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            reference_logits = reference(input_ids=input_ids).logits[0].float()
            candidate_logits = candidate(input_ids=input_ids).logits[0].float()
            reference_log = torch.log_softmax(reference_logits, dim=-1)
            candidate_log = torch.log_softmax(candidate_logits, dim=-1)
            divergences.append((reference_log.exp() * (reference_log - candidate_log)).sum(dim=-1))
            agreements.append(reference_logits.argmax(dim=-1) == candidate_logits.argmax(dim=-1))
    divergence = torch.cat(divergences)
    return {
        "mean_kl": round(float(divergence.mean()), 5),
        "max_kl": round(float(divergence.max()), 5),
        "top1_agreement": round(float(torch.cat(agreements).float().mean()), 4),
    }


def choose_cpu_dtype(
    model: torch.nn.Module, tokenizer: Any, *, kl_limit: float = BFLOAT16_KL_LIMIT
) -> tuple[torch.nn.Module, DtypeChoice]:
    """`model` (float32, on the CPU) or a bfloat16 copy of it, by `REFINERY_CPU_DTYPE` and the KL check.

    The float32 model is dropped when the bfloat16 copy is returned, so a worker holds one copy.
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
    candidate = copy.deepcopy(model).to(torch.bfloat16).eval()
    if setting == "bfloat16":
        return candidate, DtypeChoice("bfloat16", f"{CPU_DTYPE_SETTING}=bfloat16")
    measured = next_token_kl(model, candidate, tokenizer)
    flags = ", ".join(cpu_bfloat16_flags()) or "bfloat16 kernels"
    if measured["mean_kl"] <= kl_limit:
        reason = f"{flags}: bfloat16's mean next-token KL to float32 is {measured['mean_kl']} nats (limit {kl_limit})"
        logger.info("running in bfloat16: %s", reason)
        return candidate, DtypeChoice("bfloat16", reason, **measured)
    reason = (
        f"{flags}, but bfloat16's mean next-token KL to float32 is {measured['mean_kl']} nats, over the "
        f"limit of {kl_limit}"
    )
    logger.info("running in float32: %s", reason)
    return model, DtypeChoice("float32", reason, **measured)

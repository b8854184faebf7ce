"""Whether a training run fits the device's memory: a rough estimate made before queueing (no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import DTYPES

_BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough memory a training run needs on one device, against what the device has."""

    required_bytes: int
    available_bytes: int
    fits: bool
    message: str


def estimate_memory_fits(
    model_parameter_count: int,
    dtype: str,
    device: str,
    lora: bool,
    *,
    qlora: bool = False,
    available_bytes: int | None = None,
    devices: int = 1,
) -> MemoryEstimate:
    """Estimate weights + gradients + optimizer state (+ 25% for activations) and compare with the device.

    Full training with AdamW keeps fp32 master weights, gradients and two moments: about 16 bytes a
    parameter (plus the half-precision copy in mixed precision), divided across `devices` under ZeRO-3.
    LoRA keeps the frozen base in `dtype` (4-bit with QLoRA) and trains ~1% of the parameters.
    `available_bytes` defaults to this host's RAM (cpu) or free memory of CUDA device 0 (cuda).
    """
    if model_parameter_count <= 0:
        raise InvalidConfigError(f"model_parameter_count must be positive, got {model_parameter_count}")
    dtype = "float32" if dtype == "auto" and device == "cpu" else ("bfloat16" if dtype == "auto" else dtype)
    if dtype not in _BYTES_PER_PARAMETER:
        raise InvalidConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    weight_bytes = _BYTES_PER_PARAMETER[dtype]
    if lora:
        base_bytes = model_parameter_count * (0.55 if qlora else weight_bytes)
        trainable = 0.01 * model_parameter_count
        required = base_bytes + trainable * 16
    else:
        mixed_precision_copy = weight_bytes if dtype != "float32" else 0
        required = model_parameter_count * (16 + mixed_precision_copy) / max(devices, 1)
    required = int(required * 1.25)
    if available_bytes is None:
        available_bytes = _available_bytes(device)
    fits = required <= available_bytes
    gib = 1024**3
    mode = "QLoRA" if qlora else ("LoRA" if lora else "full fine-tuning")
    message = (
        f"{mode} of {model_parameter_count / 1e9:.2f}B parameters in {dtype} needs about {required / gib:.1f} GiB "
        f"per device; {device} has {available_bytes / gib:.1f} GiB"
    )
    if not fits:
        message += "; use LoRA/QLoRA, more devices with ZeRO-3, or a smaller model"
    return MemoryEstimate(required_bytes=required, available_bytes=int(available_bytes), fits=fits, message=message)


def _available_bytes(device: str) -> int:
    if device == "cuda":
        import torch  # only when asked about a GPU, which the web process never is

        if not torch.cuda.is_available():
            raise InvalidConfigError("device is cuda but this host has no CUDA device")
        free, _total = torch.cuda.mem_get_info(0)
        return int(free)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))

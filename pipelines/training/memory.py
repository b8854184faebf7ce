"""Whether a training run fits the device's memory: a rough estimate made before queueing (no torch)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import DTYPES

_BYTES_PER_PARAMETER = {"float32": 4, "bfloat16": 2, "float16": 2}
ZERO_STAGES = (0, 1, 2, 3)
"""DeepSpeed ZeRO stages: 0 is plain data parallel (every device holds everything)."""


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
    zero_stage: int = 0,
) -> MemoryEstimate:
    """Estimate weights + gradients + optimizer state (+ 25% for activations) on one of `devices` devices.

    Full training with AdamW keeps fp32 gradients and two fp32 moments, the weights in `dtype` and, in mixed
    precision, an fp32 master copy: 16 bytes a parameter in fp32, 18 in bf16/fp16. How much of that each
    device holds depends on the sharding, not on the device count alone: plain data parallel (DDP,
    `zero_stage` 0) keeps everything on every device, so more devices do not help a model that does not fit
    one; ZeRO-1 splits the optimizer state (moments + master copy) across `devices`, ZeRO-2 also the
    gradients, ZeRO-3 also the weights. LoRA keeps the frozen base in `dtype` (4-bit with QLoRA), split
    across devices only under ZeRO-3, and trains ~1% of the parameters.
    `available_bytes` defaults to this host's RAM (cpu) or free memory of CUDA device 0 (cuda).
    """
    if model_parameter_count <= 0:
        raise InvalidConfigError(f"model_parameter_count must be positive, got {model_parameter_count}")
    if devices < 1:
        raise InvalidConfigError(f"devices must be at least 1, got {devices}")
    if zero_stage not in ZERO_STAGES:
        raise InvalidConfigError(f"zero_stage must be one of {', '.join(map(str, ZERO_STAGES))}; got {zero_stage}")
    dtype = "float32" if dtype == "auto" and device == "cpu" else ("bfloat16" if dtype == "auto" else dtype)
    if dtype not in _BYTES_PER_PARAMETER:
        raise InvalidConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    weight_bytes = _BYTES_PER_PARAMETER[dtype]
    weights_split = devices if zero_stage >= 3 else 1
    if lora:
        base_bytes = model_parameter_count * (0.55 if qlora else weight_bytes) / weights_split
        trainable = 0.01 * model_parameter_count
        required = base_bytes + trainable * 16
    else:
        master_copy = 4 if dtype != "float32" else 0
        optimizer_state = (8 + master_copy) / (devices if zero_stage >= 1 else 1)
        gradients = 4 / (devices if zero_stage >= 2 else 1)
        required = model_parameter_count * (weight_bytes / weights_split + gradients + optimizer_state)
    required = int(required * 1.25)
    if available_bytes is None:
        available_bytes = _available_bytes(device)
    fits = required <= available_bytes
    gib = 1024**3
    mode = "QLoRA" if qlora else ("LoRA" if lora else "full fine-tuning")
    sharding = f"ZeRO-{zero_stage} across {devices}" if zero_stage else f"no sharding, {devices}"
    message = (
        f"{mode} of {model_parameter_count / 1e9:.2f}B parameters in {dtype} ({sharding} "
        f"device{'s' if devices != 1 else ''}) needs about {required / gib:.1f} GiB per device; "
        f"{device} has {available_bytes / gib:.1f} GiB"
    )
    if not fits:
        message += "; use LoRA/QLoRA, more devices with ZeRO-3, or a smaller model"
    return MemoryEstimate(required_bytes=required, available_bytes=int(available_bytes), fits=fits, message=message)


def deepspeed_zero_stage(deepspeed_config: str) -> int:
    """The ZeRO stage a DeepSpeed JSON config asks for (`zero_optimization.stage`); 0 without a config.

    Read here, without DeepSpeed, so the web process can size a run before it is queued.
    """
    if not deepspeed_config:
        return 0
    path = Path(deepspeed_config)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidConfigError(f"deepspeed_config {path} cannot be read: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise InvalidConfigError(f"deepspeed_config {path}: not JSON (line {error.lineno}): {error.msg}") from error
    stage = config.get("zero_optimization", {}).get("stage", 0) if isinstance(config, dict) else None
    if stage not in ZERO_STAGES:
        raise InvalidConfigError(
            f"deepspeed_config {path}: zero_optimization.stage must be one of "
            f"{', '.join(map(str, ZERO_STAGES))}; got {stage!r}"
        )
    return stage


FSDP_SHARDING_STAGES = {"full_shard": 3, "hybrid_shard": 3, "shard_grad_op": 2, "hybrid_shard_zero2": 2}
"""FSDP's sharding strategies as the ZeRO stage that splits the same things (weights and all: 3; gradients and
optimizer state: 2), so one memory rule sizes both engines."""


def sharding_stage(deepspeed_config: str, trainer_overrides: dict[str, Any]) -> int:
    """How far a run's training state is split across devices, as a ZeRO stage (0: every device holds it all).

    DeepSpeed's config names it (`zero_optimization.stage`); FSDP's strategy comes in the
    `fsdp` TrainingArguments field (e.g. "full_shard auto_wrap"). Asking for both is refused by name.
    """
    fsdp = str(trainer_overrides.get("fsdp") or "").split()
    fsdp_stage = max((FSDP_SHARDING_STAGES[word] for word in fsdp if word in FSDP_SHARDING_STAGES), default=0)
    if fsdp and deepspeed_config:
        raise InvalidConfigError(
            "training.trainer_overrides.fsdp and training.deepspeed_config both shard the run: choose one"
        )
    return fsdp_stage if fsdp else deepspeed_zero_stage(deepspeed_config)


def _available_bytes(device: str) -> int:
    if device == "cuda":
        import torch  # only when asked about a GPU, which the web process never is

        if not torch.cuda.is_available():
            raise InvalidConfigError("device is cuda but this host has no CUDA device")
        free, _total = torch.cuda.mem_get_info(0)
        return int(free)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))

"""Where and in which precision a training run computes, checked against what this host has. Imports torch."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a run computes, resolved from `device`/`dtype` on this host."""

    device: str
    dtype: str

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"


def resolve_runtime(args: TrainingArgs) -> Runtime:
    """Check the host can run `args` (QLoRA, DeepSpeed, CUDA) and set torch's threads."""
    has_cuda = torch.cuda.is_available()
    device = args.device if args.device != "auto" else ("cuda" if has_cuda else "cpu")
    if device == "cuda" and not has_cuda:
        raise InvalidConfigError("device is cuda but this host has no CUDA device; set device to auto or cpu")
    if args.qlora:
        if not has_cuda:
            raise InvalidConfigError(
                "qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this host has none; "
                "set qlora to false to train a plain LoRA adapter on CPU"
            )
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as error:
            raise InvalidConfigError(
                "qlora needs the bitsandbytes package: `pip install bitsandbytes`, or set qlora to false"
            ) from error
    if args.deepspeed_config:
        if not Path(args.deepspeed_config).is_file():
            raise InvalidConfigError(f"deepspeed_config {args.deepspeed_config} does not exist")
        try:
            import deepspeed  # noqa: F401
        except ImportError as error:
            raise InvalidConfigError("deepspeed_config is set but the deepspeed package is not installed") from error
    dtype = args.dtype
    if dtype == "auto":
        # CPUs without AVX512-BF16/AMX emulate bfloat16 matmuls, an order of magnitude slower than float32.
        dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    threads = args.torch_threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return Runtime(device=device, dtype=dtype)

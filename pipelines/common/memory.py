"""Give memory a finished stage or job has freed back to the operating system.

Why: a worker runs jobs in its own long-lived process (to keep models warm), and glibc keeps the
heap that a training step's tensors freed: measured on the bundled 135M model, one AdamW step left the
process at 1,433 MiB after the model and optimizer were deleted and collected, and at 594 MiB once
`malloc_trim(0)` ran. Without it each finished stage's peak stays resident through the next stage and
while the worker sits idle.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache
from typing import Any


def release_freed_memory() -> bool:
    """Collect garbage and return freed heap to the system; True when glibc's `malloc_trim` ran."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@cache
def _malloc_trim() -> Any | None:
    """glibc's `malloc_trim`, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None

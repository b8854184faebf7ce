"""Freed heap goes back to the system: what keeps a long-lived worker's memory at what it caches."""
from __future__ import annotations

import psutil
import pytest

from pipelines.common.memory import _malloc_trim, release_freed_memory

MIB = 2**20


@pytest.mark.skipif(_malloc_trim() is None, reason="needs glibc's malloc_trim")
def test_freed_fragmented_heap_is_returned_to_the_system():
    process = psutil.Process()
    # 100 KiB blocks sit below glibc's mmap threshold, so they live on the heap; keeping every tenth one
    # alive leaves holes that glibc would otherwise keep resident (as a training step's freed tensors do).
    blocks = [bytearray(b"x" * (100 * 1024)) for _ in range(3000)]
    kept = blocks[::10]
    del blocks
    before = process.memory_info().rss
    assert release_freed_memory() is True
    after = process.memory_info().rss
    assert before - after > 150 * MIB, f"only {(before - after) / MIB:.0f} MiB of ~260 MiB freed came back"
    assert len(kept) == 300

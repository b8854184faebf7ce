"""RunStore's atomic writes on a disk that fills up: the error comes through, and no temp file stays to hold the space."""

from __future__ import annotations

import errno
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.common.store import RunStore, atomic_writer


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 64 KiB tmpfs; skipped where mounting is not allowed."""
    mount_point = Path(tempfile.mkdtemp(prefix="refinery-fault-tiny-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"a full disk needs a small tmpfs and mount was refused: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
        mount_point.rmdir()


@pytest.mark.parametrize("chunk", [100, 200_000], ids=["fails-on-the-final-flush", "fails-on-a-write"])
def test_a_write_that_fills_the_disk_raises_enospc_and_leaves_no_temp_file(tiny_disk: Path, chunk: int):
    store = RunStore(tiny_disk / "run")
    store.write_jsonl([{"id": 1}], "kept.jsonl")

    with pytest.raises(OSError) as raised, atomic_writer(store.path("export.jsonl")) as handle:
        for _ in range(200_000 // chunk):
            handle.write("x" * chunk)

    assert raised.value.errno == errno.ENOSPC
    assert sorted(path.name for path in store.root.iterdir()) == ["kept.jsonl"]
    assert list(store.read_jsonl("kept.jsonl")) == [{"id": 1}]

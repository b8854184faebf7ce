"""A run directory whose files appear atomically, so a restarted run can trust what it finds."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# Set by whoever runs the pipeline (the worker's job): raises when this attempt may no longer write.
_write_fence: ContextVar[Callable[[], None] | None] = ContextVar("write_fence", default=None)


@contextmanager
def fenced_writes(check: Callable[[], None]) -> Iterator[None]:
    """Within it, every `atomic_writer` calls `check` just before renaming its file into place.

    A worker passes a check that raises when its attempt of the run was superseded (a resume), so a
    live old attempt cannot put files into the run directory the current attempt owns. The file is
    then discarded, never renamed. It applies to the thread that entered it (a context variable).
    """
    token = _write_fence.set(check)
    try:
        yield
    finally:
        _write_fence.reset(token)


class RunStore:
    """Files of one run under `root`; every write goes to a temp file and is renamed into place.

    A file that exists is therefore complete: resume logic only has to check for existence.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def exists(self, *parts: str) -> bool:
        return self.path(*parts).exists()

    def write_jsonl(self, rows: Iterable[dict[str, Any]], *parts: str) -> Path:
        target = self.path(*parts)
        with atomic_writer(target) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return target

    def read_jsonl(self, *parts: str) -> Iterator[dict[str, Any]]:
        with self.path(*parts).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    def write_json(self, value: Any, *parts: str) -> Path:
        target = self.path(*parts)
        with atomic_writer(target) as handle:
            json.dump(value, handle, ensure_ascii=False, indent=2)
        return target

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.path(*parts).read_text(encoding="utf-8"))


class atomic_writer:  # noqa: N801 - used like open()
    """`with atomic_writer(path) as f:` writes text to a temp file and renames it on success."""

    def __init__(self, target: Path, mode: str = "w") -> None:
        self.target = Path(target)
        self.mode = mode

    def __enter__(self):  # type: ignore[no-untyped-def]
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.")
        encoding = None if "b" in self.mode else "utf-8"
        self.handle = os.fdopen(fd, self.mode, encoding=encoding)
        return self.handle

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        # Whatever fails (the write, the flush on close when the disk is full, the fence), the temp
        # file goes: a failed export must not keep the space it could not finish filling.
        try:
            self.handle.close()
            if exc_type is None:
                fence = _write_fence.get()
                if fence is not None:
                    fence()
                os.replace(self.tmp_name, self.target)
                return
        except BaseException:
            _remove(self.tmp_name)
            raise
        _remove(self.tmp_name)


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)

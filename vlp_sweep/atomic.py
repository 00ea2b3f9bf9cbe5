"""Atomic file writes: a reader sees the old complete file or the new complete file, never a mix.

Every writer of the package (checkpoints, Parquet tables, sweep.json, reports, promoted manifests)
goes through :func:`atomic_path`: the content is written to a temporary file in the destination's
folder (same filesystem, so the final ``rename(2)`` is atomic), flushed to disk, given normal
permissions, and renamed over the destination. On any error the temporary file is removed and the
destination is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes", "write_text", "fsync_file"]

MODE = 0o644  # mkstemp makes 0600; what we write is meant to be read by others (reports, tables, models)


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's content to disk (before a rename makes it visible)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], mode: int = MODE) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error, the temporary
    file is fsynced and renamed to ``path``. The caller writes the temporary path by any means
    (``torch.save``, ``pyarrow.parquet.write_table``, ``Path.write_text``)."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = MODE) -> None:
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str, mode: int = MODE) -> None:
    write_bytes(path, text.encode("utf-8"), mode)

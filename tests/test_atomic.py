"""The one atomic-write helper: a failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vlp_sweep.atomic import atomic_path, write_text


def test_a_write_replaces_the_file_whole_and_is_readable_by_others(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "a.json"
    write_text(p, "old")
    write_text(p, "new")
    assert p.read_text() == "new"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert [x.name for x in p.parent.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "a.parquet"
    write_text(p, "complete old table")
    with pytest.raises(OSError, match="No space left"), atomic_path(p) as tmp:
        tmp.write_text("half a tab")
        raise OSError(28, "No space left on device")
    assert p.read_text() == "complete old table"
    assert [x.name for x in tmp_path.iterdir()] == ["a.parquet"]

"""Per-query ranks, written by each trial into its own folder (never carried through Ray's results).

    <storage>/<name>/<trial folder>/ranks/epoch-000003.parquet    one file per evaluation (search trials)
    <storage>/<name>/confirm/<trial folder>/ranks/selected.parquet the confirmation trial's selected checkpoint

An evaluation's file has two rows (``direction`` t2v and v2t) in :data:`RANKS_SCHEMA`; a trial that restarts
from an earlier checkpoint writes the same names again (atomically), so there is one file per evaluation
whatever happened. By default ``<storage>`` is ``runs``; the leaderboard's ``trial_dir`` column names each
trial's folder. All of them as one table: ``pandas.read_parquet`` of the list of files,
``polars.read_parquet("runs/NAME/*/ranks/*.parquet")``, DuckDB ``from 'runs/NAME/*/ranks/*.parquet'`` (files
are only ever added or replaced whole). Folders of trials Ray restarted under new ids after a kill -9 stay
on disk: join on the leaderboard's ``trial_id`` to leave them out.

A folder on remote storage (``s3://...``) is written and read through ``pyarrow.fs``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vlp_sweep.atomic import atomic_path
from vlp_sweep.errors import write_error

__all__ = ["RANKS_DIR", "RANKS_SCHEMA", "epoch_file", "read_epoch", "read_rows", "write_epoch", "write_rows"]

RANKS_DIR = "ranks"
RANKS_SCHEMA = pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("epoch", pa.int64()),
                          ("direction", pa.string()), ("ranks", pa.list_(pa.int32()))])
DIRECTIONS = ("t2v", "v2t")


def epoch_file(trial_dir: str, epoch: int) -> str:
    return f"{trial_dir.rstrip('/')}/{RANKS_DIR}/epoch-{int(epoch):06d}.parquet"


def write_rows(path: str, rows: Sequence[dict[str, Any]], schema: pa.Schema) -> None:
    """Write ``rows`` as one Parquet file at ``path`` (local: atomically; remote: one upload)."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    if "://" in path:
        from pyarrow import fs

        filesystem, where = fs.FileSystem.from_uri(path)
        filesystem.create_dir(where.rsplit("/", 1)[0], recursive=True)
        pq.write_table(table, where, filesystem=filesystem)
        return
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as e:
        raise write_error(path, e) from None


def read_rows(path: str) -> pa.Table | None:
    """The table at ``path``; None when there is no such file."""
    if "://" in path:
        from pyarrow import fs

        filesystem, where = fs.FileSystem.from_uri(path)
        if filesystem.get_file_info(where).type != fs.FileType.File:
            return None
        with filesystem.open_input_file(where) as f:
            return pq.ParquetFile(io.BytesIO(f.read())).read()
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return pq.ParquetFile(f).read()


def write_epoch(trial_dir: str, sweep: str, trial_id: str, epoch: int, t2v: np.ndarray, v2t: np.ndarray) -> str:
    """One evaluation's ranks into the trial's folder; returns the file's path."""
    path = epoch_file(trial_dir, epoch)
    rows = [{"sweep": sweep, "trial_id": trial_id, "epoch": int(epoch), "direction": d,
             "ranks": np.asarray(r, dtype=np.int32)} for d, r in zip(DIRECTIONS, (t2v, v2t))]
    write_rows(path, rows, RANKS_SCHEMA)
    return path


def read_epoch(trial_dir: str, epoch: int) -> dict[str, np.ndarray]:
    """direction -> ranks of one evaluation ({} when its file is missing or unreadable)."""
    try:
        table = read_rows(epoch_file(trial_dir, epoch))
    except (OSError, pa.ArrowException):
        return {}
    if table is None:
        return {}
    return {str(d): np.asarray(r, dtype=np.int64) for d, r in
            zip(table.column("direction").to_pylist(), table.column("ranks").to_numpy(zero_copy_only=False))}


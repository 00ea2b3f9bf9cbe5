"""A table kept as a folder of Parquet parts: appending costs what is appended, and pandas, polars and DuckDB
read the folder as one table at any moment.

    runs/NAME/history                      a symlink to the current generation (readers use this path)
    runs/NAME/.parts/history.000003/       that generation: 000003-000000.parquet, 000003-000001.parquet, ...

``append`` writes one new part into the current generation (a temporary name, then a rename: a reader lists
complete parts only); rows are in the order appended, part by part. Every change to existing parts makes a
new generation: its folder gets the parts that stay (hard links, no bytes copied) and the new ones, then the
symlink is switched in one rename and the old generation deleted. Part names differ between generations, so
a reader that listed the old one and opens a part after the switch gets "file not found" (read again:
:func:`read_parts` does), never rows twice or rows missing. Two such changes:

- a merge, when there are more than ``max_parts`` parts: the newest parts, together no larger than twice
  the part before them, become one (size-tiered, as in log-structured stores: part sizes fall off
  geometrically, so there are few parts and each row is rewritten a few times over the table's life);
- a compaction (when a sweep ends, and when rows must go: a trial restarted, or dropped on resume): every row
  in one part, the last row of each key kept, rows ``drop`` names left out; two streamed passes.

Every part of a generation has the same schema (a compaction casts older parts to the current one), so
polars and DuckDB need no schema-merging options. Readers: ``pandas.read_parquet("runs/NAME/history")``,
``polars.read_parquet("runs/NAME/history/*.parquet")``, DuckDB ``from 'runs/NAME/history/*.parquet'``. A sweep
of an earlier version has a single file (``history.parquet``) instead: :func:`read_parts` reads that too, and
the first write replaces it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlp_sweep.atomic import atomic_path
from vlp_sweep.errors import write_error

__all__ = ["PartsTable", "read_parts"]

GENERATIONS = ".parts"  # beside the table's symlink
_INDEX = "__row__"
_BATCH = 32_768  # rows per batch while rewriting


def _read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    with open(path, "rb") as f:  # one open file: one version (see leaderboard.read_arrow)
        pf = pq.ParquetFile(f)
        return pf.read(columns=[c for c in columns if c in pf.schema_arrow.names] if columns else None)


def _part_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))


def read_parts(path: str | os.PathLike[str], legacy: str | os.PathLike[str] | None = None,
               schema: pa.Schema | None = None, attempts: int = 5, columns: list[str] | None = None) -> pa.Table | None:
    """The table at ``path`` (a parts folder or its symlink), or the single file ``legacy`` of an earlier
    version; None when neither exists. A change of generation landing mid-read makes it read again.
    ``columns``: only those of them the files have."""
    p = Path(path)
    for attempt in range(attempts):
        if not p.exists():
            return _read_file(Path(legacy), columns) if legacy is not None and Path(legacy).is_file() else None
        folder = Path(os.path.realpath(p))  # one generation for the whole read
        try:
            tables = [_read_file(f, columns) for f in _part_files(folder)]
        except FileNotFoundError:  # that generation was replaced meanwhile
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
            continue
        if not tables:
            return schema.empty_table() if schema is not None else None
        return pa.concat_tables(tables, promote_options="default")
    return None


class PartsTable:
    """The writer of one parts table (the sweep driver's; readers use :func:`read_parts`)."""

    def __init__(self, root: str | os.PathLike[str], name: str, schema: pa.Schema, key: tuple[str, ...],
                 max_parts: int = 16):
        self.root, self.name, self.schema, self.key, self.max_parts = Path(root), name, schema, key, max_parts
        self.link = self.root / name
        self.legacy = self.root / f"{name}.parquet"

    # -- state on disk ------------------------------------------------------------------------------
    def _generation(self) -> tuple[int, Path] | None:
        if not self.link.is_symlink():
            return None
        folder = Path(os.path.realpath(self.link))
        return (int(folder.name.rsplit(".", 1)[1]), folder) if folder.is_dir() else None

    def parts(self) -> list[Path]:
        gen = self._generation()
        return _part_files(gen[1]) if gen is not None else []

    def _sources(self) -> list[Path]:
        gen = self._generation()
        if gen is not None:
            return _part_files(gen[1])
        return [self.legacy] if self.legacy.is_file() else []

    def batches(self) -> Iterator[pa.Table]:
        """Every row, in the current schema, a bounded batch at a time (the writer's own reads)."""
        return _batches(self._sources(), self.schema)

    def read(self) -> pa.Table:
        """Every row, in the current schema (an empty table when there is none yet)."""
        table = read_parts(self.link, self.legacy, self.schema)
        return self.schema.empty_table() if table is None else _conform(table, self.schema)

    # -- writing -----------------------------------------------------------------------------------
    def append(self, rows: list[dict[str, Any]]) -> None:
        """One new part with ``rows`` (the first write after an earlier version's single file compacts it)."""
        if not rows:
            return
        gen = self._generation()
        if gen is None:
            self.compact(extra=rows)
            return
        number, folder = gen
        parts = _part_files(folder)
        seq = int(parts[-1].stem.split("-")[1]) + 1 if parts else 0
        new = folder / f"{number:06d}-{seq:06d}.parquet"
        self._write_part(new, iter([pa.Table.from_pylist(rows, schema=self.schema)]))
        if len(parts) + 1 > self.max_parts:
            self._merge_newest([*parts, new])

    def _merge_newest(self, parts: list[Path]) -> None:
        """The newest parts whose rows add up to no more than twice the part before them, as one part."""
        sizes = [pq.read_metadata(p).num_rows for p in parts]
        start, total = len(parts) - 1, sizes[-1]
        while start > 0 and sizes[start - 1] <= 2 * total:
            start -= 1
            total += sizes[start]
        start = min(start, len(parts) - 2)  # at least two
        self._new_generation(keep=parts[:start], write=_batches(parts[start:], self.schema))

    def compact(self, extra: list[dict[str, Any]] | None = None,
                drop: Callable[[pa.Table], pa.Array] | None = None) -> None:
        """All rows (and ``extra``) as one part of a new generation: the last row of each key kept, rows on disk
        for which ``drop(keys)`` is true left out (``keys``: their key columns; ``extra`` is never dropped).
        Streamed: two passes over the parts (the key columns, then batch by batch), so its memory does not grow
        with the table."""
        sources = self._sources()
        tail = pa.Table.from_pylist(extra or [], schema=self.schema)
        keep = self._keep(sources, tail, drop)

        def kept() -> Iterator[pa.Table]:
            start = 0
            for batch in _batches(sources, self.schema, tail):
                yield batch.filter(keep.slice(start, batch.num_rows))
                start += batch.num_rows

        self._new_generation(keep=[], write=kept())
        self.legacy.unlink(missing_ok=True)  # the folder replaces an earlier version's single file

    def _keep(self, sources: list[Path], tail: pa.Table, drop: Callable[[pa.Table], pa.Array] | None) -> pa.Array:
        """Per row of the parts (in order) and ``tail``: whether the compacted table keeps it."""
        key_schema = pa.schema([self.schema.field(k) for k in self.key])
        old = pa.concat_tables([_conform(pq.read_table(f, columns=list(self.key)), key_schema) for f in sources]
                               or [key_schema.empty_table()])
        keys = pa.concat_tables([old, tail.select(list(self.key))], promote_options="default")
        indexed = keys.append_column(_INDEX, pa.array(range(keys.num_rows), pa.int64()))
        last = indexed.group_by(list(self.key), use_threads=False).aggregate([(_INDEX, "max")])
        keep = pc.is_in(indexed.column(_INDEX), value_set=last.column(f"{_INDEX}_max"))
        if drop is not None and old.num_rows:  # ``drop`` judges the rows on disk, never the ones added now
            on_disk = drop(old)
            on_disk = on_disk.combine_chunks() if isinstance(on_disk, pa.ChunkedArray) else on_disk
            dropped = pa.concat_arrays([pc.fill_null(on_disk, False), pa.array([False] * tail.num_rows, pa.bool_())])
            keep = pc.and_(keep, pc.invert(dropped))
        return keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep

    def _new_generation(self, keep: list[Path], write: Iterator[pa.Table]) -> None:
        """A generation of ``keep`` (hard links) then one part of ``write``'s rows; switched to, the old one
        deleted. A failure (full disk) leaves the current generation as it was."""
        old = self._generation()
        number = (old[0] + 1) if old is not None else 1
        folder = self.root / GENERATIONS / f"{self.name}.{number:06d}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for i, src in enumerate(keep):
                _link(src, folder / f"{number:06d}-{i:06d}.parquet")
            self._write_part(folder / f"{number:06d}-{len(keep):06d}.parquet", write)
            self._switch(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old[1], ignore_errors=True)

    def _write_part(self, path: Path, tables: Iterator[pa.Table]) -> None:
        try:
            with atomic_path(path) as tmp, pq.ParquetWriter(tmp, self.schema) as out:
                for t in tables:
                    out.write_table(t)
        except OSError as e:  # full disk, read-only folder: the previous parts stay as they were
            raise write_error(path, e) from None

    def _switch(self, folder: Path) -> None:
        """Point the symlink at ``folder`` in one rename (relative, so the run folder can move)."""
        tmp = self.root / f".{self.name}.link.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        try:
            os.symlink(os.path.relpath(folder, self.root), tmp)
            os.replace(tmp, self.link)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise write_error(self.link, e) from None


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(src, dest)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: columns added since (null), columns dropped since left out."""
    if table.schema.equals(schema):
        return table
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _batches(sources: list[Path], schema: pa.Schema, tail: pa.Table | None = None) -> Iterator[pa.Table]:
    """Every row of ``sources`` then ``tail``, in ``schema``, a bounded batch at a time."""
    for f in sources:
        with open(f, "rb") as fh:
            for batch in pq.ParquetFile(fh).iter_batches(batch_size=_BATCH):
                yield _conform(pa.Table.from_batches([batch]), schema)
    if tail is not None and tail.num_rows:
        yield tail

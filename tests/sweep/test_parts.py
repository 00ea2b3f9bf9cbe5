"""A table as a folder of Parquet parts: appended to, merged, compacted; one table to pandas, polars and DuckDB."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from vlp_sweep.errors import UserError
from vlp_sweep.sweep.tables.parts import PartsTable, read_parts

SCHEMA = pa.schema([("trial_id", pa.string()), ("epoch", pa.int64()), ("value", pa.float64())])


def rows(trial: str, epochs: range, value: float = 1.0) -> list[dict[str, Any]]:
    return [{"trial_id": trial, "epoch": e, "value": value + e} for e in epochs]


def table(tmp_path: Path, max_parts: int = 16) -> PartsTable:
    return PartsTable(tmp_path, "history", SCHEMA, key=("trial_id", "epoch"), max_parts=max_parts)


def three_readers(path: Path) -> list[pd.DataFrame]:
    """The table as the README says to read it, by each library, sorted for comparison."""
    frames = [pd.read_parquet(path), pl.read_parquet(f"{path}/*.parquet").to_pandas(),
              duckdb.sql(f"select * from '{path}/*.parquet'").df()]
    return [f.sort_values(["trial_id", "epoch"]).reset_index(drop=True) for f in frames]


def test_appended_parts_read_as_one_table_by_pandas_polars_and_duckdb(tmp_path: Path) -> None:
    t = table(tmp_path)
    t.append(rows("a", range(1, 4)))
    t.append(rows("b", range(1, 3)))
    t.append([])  # nothing to write: no part
    assert (tmp_path / "history").is_symlink() and len(t.parts()) == 2
    for df in three_readers(tmp_path / "history"):
        assert list(df.trial_id) == ["a", "a", "a", "b", "b"] and list(df.epoch) == [1, 2, 3, 1, 2]
    assert read_parts(tmp_path / "history").num_rows == 5


def test_many_appends_merge_into_few_parts_in_their_order(tmp_path: Path) -> None:
    t = table(tmp_path, max_parts=4)
    for e in range(1, 41):
        t.append(rows("a", range(e, e + 1)))
        assert len(t.parts()) <= 4
    assert read_parts(tmp_path / "history")["epoch"].to_pylist() == list(range(1, 41))  # the order appended
    assert len(list((tmp_path / ".parts").iterdir())) == 1  # old generations are deleted


def test_compaction_keeps_the_last_row_of_each_key_and_drops_what_it_is_told(tmp_path: Path) -> None:
    t = table(tmp_path)
    t.append(rows("a", range(1, 4), value=0.0))
    t.append(rows("b", range(1, 3)))
    t.append(rows("a", range(2, 3), value=100.0))  # a re-reported epoch: the last one stands
    # rows on disk are dropped, the ones added with the compaction never (a restarted trial's new rows)
    t.compact(extra=rows("b", range(2, 3), value=50.0), drop=lambda keys: pc.equal(keys["trial_id"], "b"))
    assert len(t.parts()) == 1
    df = pd.read_parquet(tmp_path / "history")
    assert list(zip(df.trial_id, df.epoch, df.value)) == [("a", 1, 1.0), ("a", 3, 3.0), ("a", 2, 102.0),
                                                          ("b", 2, 52.0)]


def test_an_earlier_versions_single_file_is_read_then_replaced(tmp_path: Path) -> None:
    old = pa.schema([("trial_id", pa.string()), ("epoch", pa.int64())])  # no "value" column yet
    pq.write_table(pa.Table.from_pylist([{"trial_id": "a", "epoch": 1}], schema=old), tmp_path / "history.parquet")
    assert read_parts(tmp_path / "history", tmp_path / "history.parquet").num_rows == 1
    t = table(tmp_path)
    assert t.read().column_names == SCHEMA.names
    t.append(rows("a", range(2, 3)))
    assert not (tmp_path / "history.parquet").exists()
    df = pd.read_parquet(tmp_path / "history")
    assert list(df.epoch) == [1, 2] and pd.isna(df.value[0]) and df.value[1] == 3.0


def test_a_reader_that_meets_a_switched_generation_reads_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = table(tmp_path)
    t.append(rows("a", range(1, 3)))
    real, calls = pq.ParquetFile, []

    def first_open_finds_the_generation_gone(*a: Any, **kw: Any) -> Any:
        calls.append(a)
        if len(calls) == 1:
            t.compact()  # a writer switches generations between the reader's listing and its open
            raise FileNotFoundError("the listed part is gone")
        return real(*a, **kw)

    monkeypatch.setattr(pq, "ParquetFile", first_open_finds_the_generation_gone)
    assert read_parts(tmp_path / "history").num_rows == 2 and len(calls) >= 3


def test_a_full_disk_leaves_the_parts_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    t = table(tmp_path, max_parts=2)
    t.append(rows("a", range(1, 3)))
    t.append(rows("a", range(3, 5)))
    before = {p.name: p.read_bytes() for p in t.parts()}

    def full(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    for write in (lambda: t.append(rows("a", range(5, 6))), t.compact):
        with pytest.raises(UserError, match="No space left on device"):
            write()
        assert {p.name: p.read_bytes() for p in t.parts()} == before
        assert not [p for p in Path(os.path.realpath(tmp_path / "history")).iterdir() if p.name.startswith(".")]
    assert sorted(p.name for p in (tmp_path / ".parts").iterdir()) == ["history.000001"]

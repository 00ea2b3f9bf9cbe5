"""A user polling a running sweep's tables with pandas, polars and DuckDB, the way the README says to."""

from __future__ import annotations

import glob
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl

# A read that lists a generation of history parts and opens a part after a compaction replaced it fails
# with "file not found" (read again); nothing else may go wrong.
VANISHED = ("No such file", "not found", "does not exist", "FileNotFound", "cannot open")


@dataclass
class LiveReaders:
    run_dir: Path
    reads: dict[str, int] = field(default_factory=dict)  # reader -> reads that saw rows
    vanished: int = 0
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> LiveReaders:
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stop.is_set():
            for name, read in (("leaderboard", self._board), ("history pandas", self._history_pd),
                               ("history polars", self._history_pl), ("history duckdb", self._history_db),
                               ("ranks pandas", self._ranks_pd), ("ranks polars", self._ranks_pl),
                               ("ranks duckdb", self._ranks_db)):
                self._try(name, read)
            time.sleep(0.05)

    def _try(self, name: str, read: object) -> None:
        try:
            n = read()  # type: ignore[operator]
        except Exception as e:  # the failures this reader exists to find
            if any(v in str(e) for v in VANISHED):
                self.vanished += 1
            else:
                self.failures.append(f"{name}: {e!r}")
            return
        if n:
            self.reads[name] = self.reads.get(name, 0) + 1

    def _board(self) -> int:
        p = self.run_dir / "leaderboard.parquet"
        if not p.exists():
            return 0
        with open(p, "rb") as f:  # one open file (README: reading while a sweep runs)
            return len(pd.read_parquet(f))

    def _unique(self, df: pd.DataFrame, keys: list[str]) -> int:
        if df.duplicated(keys).any():
            self.failures.append(f"rows twice: {df[df.duplicated(keys)][keys].head()}")
        return len(df)

    def _history_pd(self) -> int:
        h = self.run_dir / "history"
        return self._unique(pd.read_parquet(h), ["trial_id", "epoch"]) if h.exists() else 0

    def _history_pl(self) -> int:
        h = self.run_dir / "history"
        if not h.exists() or not glob.glob(f"{h}/*.parquet"):
            return 0
        return self._unique(pl.read_parquet(f"{h}/*.parquet").to_pandas(), ["trial_id", "epoch"])

    def _history_db(self) -> int:
        h = self.run_dir / "history"
        if not h.exists() or not glob.glob(f"{h}/*.parquet"):
            return 0
        rows = duckdb.sql(f"select trial_id, epoch from '{h}/*.parquet'").df()
        return self._unique(rows, ["trial_id", "epoch"])

    def _rank_files(self) -> list[str]:
        return glob.glob(f"{self.run_dir}/*/ranks/*.parquet")

    def _ranks_pd(self) -> int:
        files = self._rank_files()
        return self._unique(pd.read_parquet(files), ["trial_id", "epoch", "direction"]) if files else 0

    def _ranks_pl(self) -> int:
        if not self._rank_files():
            return 0
        ranks = pl.read_parquet(f"{self.run_dir}/*/ranks/*.parquet").to_pandas()
        return self._unique(ranks.drop(columns="ranks"), ["trial_id", "epoch", "direction"])

    def _ranks_db(self) -> int:
        if not self._rank_files():
            return 0
        rows = duckdb.sql(f"select trial_id, epoch, direction, len(ranks) as n "
                          f"from '{self.run_dir}/*/ranks/*.parquet'").df()
        return self._unique(rows, ["trial_id", "epoch", "direction"])

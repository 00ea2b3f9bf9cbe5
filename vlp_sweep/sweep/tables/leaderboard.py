"""Live Parquet leaderboards of a sweep: the only module that writes Parquet tables of the search's results.

    leaderboard.parquet  one row per trial, rewritten whole and atomically (a reader sees the previous or the
                         new complete table); small: its size grows with the trials, not their evaluations
    history/             one row per trial and evaluation: a folder of Parquet parts, appended to (parts.py)

Per-query ranks are written by each trial into its own folder (ranks.py). What one result costs does not
grow with the sweep: a trial's best and last evaluations are kept per trial (no scan of the history), the
history grows by appended parts, and the files are written at most once a second (``callbacks.py``).
Plain Python: the Ray callback in callbacks.py feeds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vlp_sweep.atomic import atomic_path
from vlp_sweep.config import config_keys
from vlp_sweep.errors import UserError, write_error
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.model_factory import BUILTIN_FACTORY, BUILTIN_OPTIONS
from vlp_sweep.selection import finite_float, selection_key, trial_key
from vlp_sweep.sweep.tables.parts import PartsTable, read_parts
from vlp_sweep.train.watch.health_config import COLUMNS as HEALTH_COLUMNS
from vlp_sweep.train.watch.health_config import HISTORY_HEALTH

# Statuses: PENDING, RUNNING, TERMINATED (ran all epochs), STOPPED (early-stopped by the scheduler), ERROR,
# INTERRUPTED (running when Ctrl-C or SIGTERM stopped the sweep; a resume continues it).
GROUP_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR", "v2t_R1", "rsum")
_PY_TO_ARROW = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}


def config_column(key: str) -> str:
    """Trainer key -> leaderboard column: ``optim.lr`` -> ``optim_lr`` (SQL-friendly, unique: the
    section names contain no underscore, so the first ``_`` splits section and field)."""
    return key.replace(".", "_", 1)


def _leaderboard_schema() -> pa.Schema:
    fields = [("sweep", pa.string()), ("trial_id", pa.string()), ("status", pa.string()), ("error", pa.string()),
              ("seed", pa.int64()), ("group_id", pa.string()), ("params", pa.string())]
    fields += [(config_column(k), _PY_TO_ARROW[v["type"]]) for k, v in config_keys().items()]
    fields += [("model_options", pa.string())]  # JSON of model.options (a factory of your own)
    fields += [(f"best_{m}", pa.float64()) for m in METRIC_NAMES]
    fields += [(f"last_{m}", pa.float64()) for m in METRIC_NAMES]
    fields += [("best_epoch", pa.int64()), ("epochs", pa.int64()), ("max_epochs", pa.int64()),
               ("time_s", pa.float64()), ("samples_per_s", pa.float64()), ("checkpoint_path", pa.string()),
               ("checkpoint_sha256", pa.string()), ("node_id", pa.string()), ("trial_dir", pa.string()),
               ("group_n", pa.int64())]
    fields += [(f"group_{s}_{m}", pa.float64()) for m in GROUP_METRICS for s in ("mean", "std")]
    fields += [(c, _PY_TO_ARROW[t]) for c, t in HEALTH_COLUMNS.items()]
    fields += [("config_json", pa.string()), ("updated_at", pa.timestamp("s", tz="UTC"))]
    return pa.schema(fields)


# Where an evaluation's time went (the trainer's metrics): training, evaluation, checkpoint, the previous report.
TIME_COLUMNS = ("epoch_s", "eval_s", "checkpoint_s", "report_s", "setup_s")
HISTORY_COLUMNS = ("epoch", "step", "elapsed_s", *TIME_COLUMNS, "samples_per_s", "lr", "logit_scale") + METRIC_NAMES


def _history_schema() -> pa.Schema:
    return pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("epoch", pa.int64()), ("step", pa.int64())]
                     + [(c, pa.float64()) for c in HISTORY_COLUMNS[2:]]
                     + [(c, _PY_TO_ARROW[HEALTH_COLUMNS[c]]) for c in HISTORY_HEALTH]
                     # when the driver received it: the order ASHA saw the results in (asha.py rebuilds from it)
                     + [("reported_at", pa.timestamp("us", tz="UTC"))])


LEADERBOARD_SCHEMA = _leaderboard_schema()
HISTORY_SCHEMA = _history_schema()


def read_arrow(path: str | os.PathLike[str]) -> pa.Table:
    """Read one of these tables while a sweep may be rewriting it.

    Path-based readers (``pandas.read_parquet(path)``, pyarrow datasets, DuckDB, polars) open the file
    once for the footer and again for the data; a rename landing in between pairs one version's footer
    with the other's pages (measured: most reads fail under a tight rewrite loop). Reading from one
    open file sees one version, always.
    """
    with open(path, "rb") as f:
        return pq.ParquetFile(f).read()


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """:func:`read_arrow` as a pandas DataFrame."""
    return read_arrow(path).to_pandas()


def read_history(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``history`` as one DataFrame (its parts folder, or an earlier version's ``history.parquet``); empty when
    no evaluation has been written yet."""
    d = Path(run_dir)
    table = read_parts(d / "history", d / "history.parquet")
    return pd.DataFrame() if table is None else table.to_pandas()


def write_table_atomic(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> None:
    """Replace ``path`` whole; a failed write (full disk, read-only folder) leaves the previous complete
    file and raises a UserError naming ``path``."""
    table = pa.Table.from_pylist(rows, schema=schema)
    try:
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    except OSError as e:
        raise write_error(path, e) from None



def health_values(result: dict[str, Any]) -> dict[str, Any]:
    """The health columns of a trial's result, each as its column's type (None when absent)."""
    out: dict[str, Any] = {}
    for c, typ in HEALTH_COLUMNS.items():
        v = result.get(c)
        if typ == "str":
            out[c] = None if v is None else str(v)
        else:
            f = finite_float(v)
            out[c] = None if f is None else (int(f) if typ == "int" else f)
    return out


# An errored trial's reason, recognised in its error line: (exception name, checklist item, flag).
_ERROR_ITEMS = (("NonFiniteError", "finite", "non-finite loss"), ("OutOfMemory", "oom", "out of memory"))


def group_id(config_flat: dict[str, Any]) -> str:
    """Trials that differ only in their seed (and output folder) share a group: repeats of one config."""
    rest = {k: v for k, v in sorted(config_flat.items()) if k not in ("run.seed", "run.out_dir", "run.num_threads")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class _Trial:
    """What the leaderboard keeps of one trial's evaluations: the best (by the selection rule) and the last,
    and the checkpoints of those two epochs; never the whole history (that is on disk)."""

    best: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    ckpts: dict[int, tuple[str, str]] = field(default_factory=dict)  # epoch -> (path, sha256)
    health: dict[str, Any] | None = None  # health columns of its last result that had any

    def add(self, hist: dict[str, Any], metric: str, mode: str) -> None:
        """One more evaluation (in any order: reopening a sweep reads them part by part)."""
        if self.best is None or _key(hist, metric, mode) < _key(self.best, metric, mode):
            self.best = hist
        if self.last is None or hist["epoch"] >= self.last["epoch"]:
            self.last = hist
        keep = {self.best["epoch"], self.last["epoch"]}
        self.ckpts = {e: c for e, c in self.ckpts.items() if e in keep}


def _key(h: dict[str, Any], metric: str, mode: str) -> tuple[float, float, float]:
    return selection_key(h, h.get("epoch"), metric, mode)


class Leaderboard:
    """The sweep's results: a row per trial in memory, the history appended to disk by :meth:`write`."""

    def __init__(self, run_dir: str | os.PathLike[str], sweep: str, metric: str, mode: str, max_epochs: int):
        self.dir = Path(run_dir)
        self.sweep, self.metric, self.mode, self.max_epochs = sweep, metric, mode, max_epochs
        self.rows: dict[str, dict[str, Any]] = {}
        self.trials: dict[str, _Trial] = {}
        self.history = PartsTable(self.dir, "history", HISTORY_SCHEMA, key=("trial_id", "epoch"))
        self.pending: list[dict[str, Any]] = []  # history rows not written yet
        self.dropped: dict[str, int] = {}  # trial -> first epoch whose rows on disk are superseded (0: all)
        self.damaged: str | None = None  # why leaderboard.parquet could not be read when reopened

    # -- events -------------------------------------------------------------------------------
    def start(self, trial_id: str, config: dict[str, Any], params: dict[str, Any],
              trial_dir: str | None = None) -> None:
        row = self.rows.setdefault(trial_id, self._empty_row(trial_id))
        row.update({config_column(k): v for k, v in config.items() if config_column(k) in LEADERBOARD_SCHEMA.names})
        row.update(status="RUNNING", error=None, seed=config.get("run.seed"), group_id=group_id(config),
                   params=json.dumps(params, sort_keys=True, default=str),
                   config_json=json.dumps(config, sort_keys=True, default=str),
                   model_options=json.dumps({k.split(".", 2)[2]: v for k, v in config.items()
                                             if k.startswith("model.options.")}, sort_keys=True),
                   max_epochs=int(config.get("optim.epochs", self.max_epochs)))
        if config.get("model.factory", BUILTIN_FACTORY) != BUILTIN_FACTORY:  # keys that model never read
            row.update({config_column(f"model.{k}"): None for k in BUILTIN_OPTIONS})
        if trial_dir:
            row["trial_dir"] = trial_dir

    def result(self, trial_id: str, result: dict[str, Any]) -> None:
        epoch = int(result["epoch"])
        hist = {"sweep": self.sweep, "trial_id": trial_id, "epoch": epoch, "step": int(result.get("step", 0))}
        hist |= {c: finite_float(result.get(c)) for c in HISTORY_COLUMNS[2:]}
        health = health_values(result)
        hist |= {c: health[c] for c in HISTORY_HEALTH}
        hist["reported_at"] = dt.datetime.now(dt.timezone.utc)
        t = self.trials.get(trial_id)
        if t is not None and t.last is not None and epoch <= t.last["epoch"]:
            t = self._rewind(trial_id, epoch)
        t = t or self.trials.setdefault(trial_id, _Trial())
        t.add(hist, self.metric, self.mode)
        self.pending.append(hist)
        if any(v is not None for v in health.values()):
            t.health = health
        if result.get("node_id"):
            self.rows.setdefault(trial_id, self._empty_row(trial_id))["node_id"] = str(result["node_id"])
        if result.get("checkpoint_sha256"):
            t.ckpts.setdefault(epoch, ("", str(result["checkpoint_sha256"])))
        self.refresh(trial_id)

    def checkpoint(self, trial_id: str, epoch: int, path: str) -> None:
        t = self.trials.setdefault(trial_id, _Trial())
        if t.best is not None and t.last is not None and epoch not in (t.best["epoch"], t.last["epoch"]):
            return  # neither the best nor the last evaluation: the leaderboard will never name it
        t.ckpts[epoch] = (path, t.ckpts.get(epoch, ("", ""))[1])
        self.refresh(trial_id)

    def finish(self, trial_id: str, error: str | None = None) -> None:
        row = self.rows.setdefault(trial_id, self._empty_row(trial_id))
        if error:
            row.update(status="ERROR", error=error.strip().splitlines()[-1][:500] if error.strip() else "error")
            _health_of_error(row, row["error"])
        else:
            target = row.get("max_epochs") or self.max_epochs
            row["status"] = "TERMINATED" if (row.get("epochs") or 0) >= target else "STOPPED"
        row["updated_at"] = _now()

    def prune(self, keep: set[str]) -> None:
        """Drop trials the experiment no longer knows (restarted under new ids after a resume)."""
        for tid in [t for t in self.rows if t not in keep]:
            del self.rows[tid]
        for tid in [t for t in self.trials if t not in keep]:
            del self.trials[tid]
            self.dropped[tid] = 0
        self.pending = [h for h in self.pending if h["trial_id"] in keep]

    def _rewind(self, trial_id: str, epoch: int) -> _Trial:
        """The trial restarted from an earlier checkpoint (a retry, a resume after kill -9) and reports ``epoch``
        again: its evaluations from there on are superseded (dropped from the history at the next write), and
        the ones before decide its best again. Rare: reads the trial's rows from disk."""
        self.dropped[trial_id] = min(epoch, self.dropped.get(trial_id, epoch))
        self.pending = [h for h in self.pending if not (h["trial_id"] == trial_id and h["epoch"] >= epoch)]
        mine = [h for b in self.history.batches() for h in b.filter(pc.equal(b["trial_id"], trial_id)).to_pylist()]
        old = self.trials.get(trial_id)
        t = self.trials[trial_id] = _Trial(health=old.health if old else None)
        for h in mine + [h for h in self.pending if h["trial_id"] == trial_id]:
            if h["epoch"] < epoch:
                t.add(h, self.metric, self.mode)
        t.ckpts = {e: c for e, c in (old.ckpts if old else {}).items() if e < epoch}
        return t

    # -- derived columns ------------------------------------------------------------------------
    def _empty_row(self, trial_id: str) -> dict[str, Any]:
        return {"sweep": self.sweep, "trial_id": trial_id, "status": "PENDING", "max_epochs": self.max_epochs,
                "updated_at": _now()}

    def refresh(self, trial_id: str) -> None:
        row = self.rows.setdefault(trial_id, self._empty_row(trial_id))
        t = self.trials.get(trial_id)
        if t is None or t.best is None or t.last is None:
            return
        best, last = t.best, t.last
        row.update({f"best_{m}": best.get(m) for m in METRIC_NAMES})
        row.update({f"last_{m}": last.get(m) for m in METRIC_NAMES})
        path, sha = t.ckpts.get(best["epoch"], (None, None))
        row.update(best_epoch=best["epoch"], epochs=last["epoch"], time_s=last.get("elapsed_s"),
                   samples_per_s=last.get("samples_per_s"), checkpoint_path=path or None,
                   checkpoint_sha256=sha or None, updated_at=_now())
        row.update(t.health or {})

    def _group_stats(self, rows: list[dict[str, Any]]) -> None:
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(str(r.get("group_id")), []).append(r)
        for members in groups.values():
            for m in GROUP_METRICS:
                vals = [v for v in (r.get(f"best_{m}") for r in members) if v is not None]
                for r in members:
                    r["group_n"] = len(members)
                    r[f"group_mean_{m}"] = float(np.mean(vals)) if vals else None
                    r[f"group_std_{m}"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None)

    # -- persistence -----------------------------------------------------------------------------
    def write(self) -> None:
        """The leaderboard (whole, atomically), then the history's new rows (one appended part)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = [dict(r) for r in self.rows.values()]
        self._group_stats(rows)
        rows.sort(key=lambda r: trial_key(r, self.metric, self.mode))  # best first, by the selection rule
        write_table_atomic(rows, LEADERBOARD_SCHEMA, self.dir / "leaderboard.parquet")
        self.write_history()

    def write_history(self, compact: bool = False) -> None:
        if self.dropped or compact:
            dropped = dict(self.dropped)
            self.history.compact(extra=self.pending, drop=(lambda t: _superseded(t, dropped)) if dropped else None)
            self.dropped.clear()
        else:
            self.history.append(self.pending)
        self.pending = []

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], sweep: str, metric: str, mode: str,
             max_epochs: int) -> Leaderboard:
        """Reopen a sweep's tables (to resume); missing files give an empty board. An unreadable leaderboard
        is noted in ``damaged`` (the callback rebuilds its rows from the experiment's trials and the history)."""
        lb = cls(run_dir, sweep, metric, mode, max_epochs)
        path = Path(run_dir) / "leaderboard.parquet"
        try:
            rows = read_arrow(path).to_pylist() if path.exists() else []
        except (OSError, pa.ArrowException) as e:
            rows, lb.damaged = [], f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        for r in rows:
            lb.rows[r["trial_id"]] = r
        lb._read_history()
        for r in rows:
            t = lb.trials.get(r["trial_id"])
            if t is not None and r.get("checkpoint_path") and r.get("best_epoch") is not None:
                t.ckpts[int(r["best_epoch"])] = (r["checkpoint_path"], r.get("checkpoint_sha256") or "")
        return lb

    def _read_history(self) -> None:
        """Each trial's best and last evaluation, from the history on disk (a batch at a time)."""
        try:
            for batch in self.history.batches():
                for h in batch.to_pylist():
                    self.trials.setdefault(h["trial_id"], _Trial()).add(h, self.metric, self.mode)
        except (OSError, pa.ArrowException) as e:
            raise UserError(f"{self.history.link}: not a readable Parquet table ({type(e).__name__}); the sweep "
                            "cannot resume from it") from None


def _superseded(table: pa.Table, dropped: dict[str, int]) -> pa.Array:
    """Rows of ``table`` that ``dropped`` (trial -> first superseded epoch) removes."""
    mask = pa.array([False] * table.num_rows, pa.bool_())
    for tid, epoch in dropped.items():
        mine = pc.and_(pc.equal(table["trial_id"], tid), pc.greater_equal(table["epoch"], epoch))
        mask = pc.or_(mask, mine)
    return mask


def _health_of_error(row: dict[str, Any], error: str) -> None:
    """A trial stopped by a NaN or by running out of memory below the floor fails that checklist item."""
    for name, item, flag in _ERROR_ITEMS:
        if name in error:
            flags = [f for f in (row.get("health_flags") or "").split(", ") if f]
            row.update({"health": "fail", f"health_{item}": "fail", "health_flags": ", ".join([*flags, flag])})


def _now() -> Any:
    return dt.datetime.fromtimestamp(int(time.time()), tz=dt.timezone.utc)


def mark_interrupted(run_dir: str | os.PathLike[str]) -> int:
    """After a stopped sweep: rows still RUNNING or PENDING become INTERRUPTED (a resume runs them on);
    returns how many. Reads and rewrites leaderboard.parquet alone, atomically."""
    path = Path(run_dir) / "leaderboard.parquet"
    try:
        rows = read_arrow(path).to_pylist() if path.exists() else []
    except (OSError, pa.ArrowException):  # damaged: a resume rebuilds it from the trials' results
        return 0
    open_rows = [r for r in rows if r.get("status") in ("RUNNING", "PENDING")]
    for r in open_rows:
        r.update(status="INTERRUPTED", updated_at=_now())
    if open_rows:
        write_table_atomic(rows, LEADERBOARD_SCHEMA, path)
    return len(open_rows)

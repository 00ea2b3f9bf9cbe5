"""Live Parquet leaderboards of a sweep: the only module that writes Parquet tables of results.

    leaderboard.parquet  one row per trial (schema: LEADERBOARD_DOC)
    history.parquet      one row per trial and evaluation
    ranks.parquet        per-query ranks of every evaluation (for bootstrap confidence intervals)

Each file is rewritten whole and atomically (temporary file + rename) whenever results arrive, so a
reader (pandas, polars, DuckDB) sees the previous or the new complete table, never a partial one.
Plain Python: the Ray callback in driver.py feeds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vlp_sweep.atomic import atomic_path
from vlp_sweep.config import config_keys
from vlp_sweep.errors import write_error
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.model_factory import BUILTIN_FACTORY, BUILTIN_OPTIONS
from vlp_sweep.selection import best_evaluation, finite_float, trial_key
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
               ("checkpoint_sha256", pa.string()), ("node_id", pa.string()), ("group_n", pa.int64())]
    fields += [(f"group_{s}_{m}", pa.float64()) for m in GROUP_METRICS for s in ("mean", "std")]
    fields += [(c, _PY_TO_ARROW[t]) for c, t in HEALTH_COLUMNS.items()]
    fields += [("config_json", pa.string()), ("updated_at", pa.timestamp("s", tz="UTC"))]
    return pa.schema(fields)


HISTORY_COLUMNS = ("epoch", "step", "elapsed_s", "epoch_s", "samples_per_s", "lr", "logit_scale") + METRIC_NAMES


def _history_schema() -> pa.Schema:
    return pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("epoch", pa.int64()), ("step", pa.int64())]
                     + [(c, pa.float64()) for c in HISTORY_COLUMNS[2:]]
                     + [(c, _PY_TO_ARROW[HEALTH_COLUMNS[c]]) for c in HISTORY_HEALTH])


RANKS_SCHEMA = pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("epoch", pa.int64()),
                          ("direction", pa.string()), ("ranks", pa.list_(pa.int32()))])
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


class Leaderboard:
    """The sweep's results in memory, written to Parquet after every change."""

    def __init__(self, run_dir: str | os.PathLike[str], sweep: str, metric: str, mode: str, max_epochs: int):
        self.dir = Path(run_dir)
        self.sweep, self.metric, self.mode, self.max_epochs = sweep, metric, mode, max_epochs
        self.rows: dict[str, dict[str, Any]] = {}
        self.history: dict[tuple[str, int], dict[str, Any]] = {}
        self.ranks: dict[tuple[str, int, str], list[int]] = {}
        self.ckpts: dict[tuple[str, int], tuple[str, str]] = {}
        self.health: dict[str, dict[str, Any]] = {}  # trial -> health columns of its last result

    # -- events -------------------------------------------------------------------------------
    def start(self, trial_id: str, config: dict[str, Any], params: dict[str, Any]) -> None:
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

    def result(self, trial_id: str, result: dict[str, Any]) -> None:
        epoch = int(result["epoch"])
        hist = {"sweep": self.sweep, "trial_id": trial_id, "epoch": epoch, "step": int(result.get("step", 0))}
        hist |= {c: finite_float(result.get(c)) for c in HISTORY_COLUMNS[2:]}
        health = health_values(result)
        hist |= {c: health[c] for c in HISTORY_HEALTH}
        if any(v is not None for v in health.values()):
            self.health[trial_id] = health
        self.history[(trial_id, epoch)] = hist
        for d in ("t2v", "v2t"):
            if f"{d}_ranks" in result:
                self.ranks[(trial_id, epoch, d)] = [int(r) for r in result[f"{d}_ranks"]]
        if result.get("node_id"):
            self.rows.setdefault(trial_id, self._empty_row(trial_id))["node_id"] = str(result["node_id"])
        if result.get("checkpoint_sha256"):
            self.ckpts.setdefault((trial_id, epoch), ("", str(result["checkpoint_sha256"])))
        self._refresh(trial_id)

    def checkpoint(self, trial_id: str, epoch: int, path: str) -> None:
        sha = self.ckpts.get((trial_id, epoch), ("", ""))[1]
        self.ckpts[(trial_id, epoch)] = (path, sha)
        self._refresh(trial_id)

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
        self.history = {k: v for k, v in self.history.items() if k[0] in keep}
        self.ranks = {k: v for k, v in self.ranks.items() if k[0] in keep}
        self.ckpts = {k: v for k, v in self.ckpts.items() if k[0] in keep}
        self.health = {k: v for k, v in self.health.items() if k in keep}

    # -- derived columns ------------------------------------------------------------------------
    def _empty_row(self, trial_id: str) -> dict[str, Any]:
        return {"sweep": self.sweep, "trial_id": trial_id, "status": "PENDING", "max_epochs": self.max_epochs,
                "updated_at": _now()}

    def _refresh(self, trial_id: str) -> None:
        row = self.rows.setdefault(trial_id, self._empty_row(trial_id))
        hist = sorted((h for (t, _), h in self.history.items() if t == trial_id), key=lambda h: h["epoch"])
        if not hist:
            return
        best = best_evaluation(hist, self.metric, self.mode) or hist[-1]  # the one rule (selection.py)
        last = hist[-1]
        row.update({f"best_{m}": best.get(m) for m in METRIC_NAMES})
        row.update({f"last_{m}": last.get(m) for m in METRIC_NAMES})
        path, sha = self.ckpts.get((trial_id, best["epoch"]), (None, None))
        row.update(best_epoch=best["epoch"], epochs=last["epoch"], time_s=last.get("elapsed_s"),
                   samples_per_s=last.get("samples_per_s"), checkpoint_path=path or None,
                   checkpoint_sha256=sha or None, updated_at=_now())
        row.update(self.health.get(trial_id, {}))

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
        self.dir.mkdir(parents=True, exist_ok=True)
        rows = [dict(r) for r in self.rows.values()]
        self._group_stats(rows)
        rows.sort(key=lambda r: trial_key(r, self.metric, self.mode))  # best first, by the selection rule
        write_table_atomic(rows, LEADERBOARD_SCHEMA, self.dir / "leaderboard.parquet")
        hist = sorted(self.history.values(), key=lambda h: (h["trial_id"], h["epoch"]))
        write_table_atomic(hist, HISTORY_SCHEMA, self.dir / "history.parquet")
        ranks = [{"sweep": self.sweep, "trial_id": t, "epoch": e, "direction": d, "ranks": r}
                 for (t, e, d), r in sorted(self.ranks.items())]
        write_table_atomic(ranks, RANKS_SCHEMA, self.dir / "ranks.parquet")

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], sweep: str, metric: str, mode: str,
             max_epochs: int) -> Leaderboard:
        """Reopen a sweep's tables (to resume); missing files give an empty board."""
        lb = cls(run_dir, sweep, metric, mode, max_epochs)
        d = Path(run_dir)
        if (d / "leaderboard.parquet").exists():
            for r in read_arrow(d / "leaderboard.parquet").to_pylist():
                lb.rows[r["trial_id"]] = r
                if r.get("checkpoint_path") and r.get("best_epoch") is not None:
                    key = (r["trial_id"], r["best_epoch"])
                    lb.ckpts[key] = (r["checkpoint_path"], r.get("checkpoint_sha256") or "")
        if (d / "history.parquet").exists():
            for h in read_arrow(d / "history.parquet").to_pylist():
                lb.history[(h["trial_id"], h["epoch"])] = h
        if (d / "ranks.parquet").exists():
            for r in read_arrow(d / "ranks.parquet").to_pylist():
                lb.ranks[(r["trial_id"], r["epoch"], r["direction"])] = r["ranks"]
        return lb


def _health_of_error(row: dict[str, Any], error: str) -> None:
    """A trial stopped by a NaN or by running out of memory below the floor fails that checklist item."""
    for name, item, flag in _ERROR_ITEMS:
        if name in error:
            flags = [f for f in (row.get("health_flags") or "").split(", ") if f]
            row.update({"health": "fail", f"health_{item}": "fail", "health_flags": ", ".join([*flags, flag])})


def _now() -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(int(time.time()), tz=dt.timezone.utc)


def mark_interrupted(run_dir: str | os.PathLike[str]) -> int:
    """After a stopped sweep: rows still RUNNING or PENDING become INTERRUPTED (a resume runs them on);
    returns how many. Reads and rewrites leaderboard.parquet alone, atomically."""
    path = Path(run_dir) / "leaderboard.parquet"
    if not path.exists():
        return 0
    rows = read_arrow(path).to_pylist()
    open_rows = [r for r in rows if r.get("status") in ("RUNNING", "PENDING")]
    for r in open_rows:
        r.update(status="INTERRUPTED", updated_at=_now())
    if open_rows:
        write_table_atomic(rows, LEADERBOARD_SCHEMA, path)
    return len(open_rows)

"""A sweep folder as read from disk (for ``status``, ``report`` and ``promote``): sweep.json and the Parquet
tables, the checkpoints they name, a metric resolved, trials ranked, a row's params and config.

Ranking: the selection rule of ``vlp_sweep.selection`` (the same one that picks each trial's
best epoch and that Ray's checkpoint retention follows): the metric in its direction, then ``rsum``
(higher is better: the sum of all six R@k, so a tie on one recall is broken by the others), then the
earlier ``best_epoch`` (the same quality reached with less training), then ``trial_id`` (so the order
never depends on the file's row order). All values are the leaderboard's ``best_*`` columns, which
hold the metrics of the epoch whose checkpoint the row records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.errors import UserError, did_you_mean
from vlp_sweep.metric_names import METRIC_NAMES, MODE
from vlp_sweep.selection import trial_key
from vlp_sweep.space.params import contains
from vlp_sweep.sweep.tables.leaderboard import read_history, read_table
from vlp_sweep.sweep.tables.ranks import read_epoch
from vlp_sweep.sweep.trial import BASELINE_KEY

__all__ = ["FINISHED", "Sweep", "all_failed", "checkpoint_missing", "drawn_params", "error_groups", "inactive_keys",
           "is_baseline_trial", "load_sweep", "missing_checkpoints", "missing_confirmed", "open_sweep",
           "rank_trials", "read_meta", "resolve_metric", "searched_only", "sort_key", "trial_config", "trial_params",
           "which"]
LEGACY_RANKS = "ranks.parquet"  # an earlier version's per-query ranks, all in one file
# the confirmation stage, when it has run (confirm_queries: who signed each held-out query, query_signers.py)
CONFIRM_TABLES = ("confirm.parquet", "confirm_ranks.parquet", "confirm_queries.parquet")


def read_meta(path: str | Path) -> dict[str, Any]:
    """A sweep.json; one that is not a JSON object (overwritten, cut short) is a UserError naming it."""
    p = Path(path)
    try:
        meta = json.loads(p.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        why = f"not valid JSON ({e.msg}, line {e.lineno})" if isinstance(e, json.JSONDecodeError) else "not text"
        raise UserError(f"{p} is damaged: {why}; restore it from a backup (the sweep's other files are intact)") \
            from None
    if not isinstance(meta, dict):
        raise UserError(f"{p} is damaged: not a JSON object; restore it from a backup")
    return meta


def open_sweep(run_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """(sweep.json contents, leaderboard DataFrame); a folder that is not a sweep, a damaged sweep.json or an
    unreadable leaderboard is a UserError."""
    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"not a sweep folder: {d} (no such folder)")
    if not (d / "sweep.json").is_file():
        raise UserError(f"not a sweep folder: {d} (no sweep.json)")
    meta = read_meta(d / "sweep.json")
    lb_path = d / "leaderboard.parquet"
    try:
        board = read_table(lb_path) if lb_path.is_file() else pd.DataFrame()
    except Exception as e:  # cut short, overwritten: the history and Ray's experiment still have the results
        raise UserError(f"{lb_path} is damaged ({type(e).__name__}): `vlp-sweep run SPACE --name {d.name} "
                        "--resume` rebuilds it from the trials' own results") from None
    return meta, board


FINISHED = ("TERMINATED", "STOPPED")  # ran all epochs, or early-stopped by the scheduler


def checkpoint_missing(path: Any) -> bool:
    """Whether a recorded checkpoint path is a local file that is no longer there. Paths on remote
    storage (``s3://...``) cannot be checked from here and count as present."""
    if not isinstance(path, str) or not path or "://" in path:
        return False
    return not Path(path).is_file()


def missing_checkpoints(board: pd.DataFrame) -> list[tuple[str, str]]:
    """(trial id, path) of every finished trial whose recorded checkpoint went missing (deleted by hand,
    or the run folder moved), in the board's order."""
    if board.empty or "checkpoint_path" not in board:
        return []
    done = board[board["status"].isin(FINISHED)]
    return [(str(r["trial_id"]), str(r["checkpoint_path"])) for r in done.to_dict("records")
            if checkpoint_missing(r.get("checkpoint_path"))]


def error_groups(errors: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(error line, the trials that failed with it) from (trial, error) pairs: the most frequent first, then
    in the order first seen. A thousand-trial sweep's errors are a few kinds, each worth one line."""
    groups: dict[str, list[str]] = {}
    for tid, err in errors:
        groups.setdefault(err, []).append(tid)
    return sorted(groups.items(), key=lambda g: -len(g[1]))  # a stable sort: ties keep their first appearance


def all_failed(board: pd.DataFrame) -> str | None:
    """When every trial of a finished search errored: one line naming the first error (else None)."""
    if board.empty or not (board["status"] == "ERROR").all():
        return None
    first = board.sort_values(["updated_at", "trial_id"]).iloc[0] if "updated_at" in board else board.iloc[0]
    n = len(board)
    return (f"all {n} trial{'s' if n != 1 else ''} of the search failed; the first, trial {first['trial_id']}: "
            f"{first.get('error') or 'no error recorded'}")


def which(trials: list[str], show: int = 3) -> str:
    """'a, b, c and 4 more'."""
    more = f" and {len(trials) - show} more" if len(trials) > show else ""
    return ", ".join(trials[:show]) + more


def missing_confirmed(confirm: pd.DataFrame) -> list[str]:
    """One line per confirmation run (a confirm.parquet table) whose selected checkpoint is no longer on disk."""
    rows = {str(r["trial_id"]): r for r in confirm.to_dict("records")} if not confirm.empty else {}
    return [f"confirmation {rows[t].get('config_id')} seed {rows[t].get('seed')} (trial {t}): {path} (deleted or "
            "moved since the stage recorded it; promote falls back to the next run)"
            for t, path in missing_checkpoints(confirm)]


@dataclass
class Sweep:
    """A sweep folder as read from disk: sweep.json, the leaderboard and history, the confirmation's three
    tables; per-query ranks are read when asked for (:meth:`ranks_of`), from the trials' own folders."""

    run_dir: Path
    meta: dict[str, Any]
    board: pd.DataFrame
    history: pd.DataFrame
    ranks: pd.DataFrame  # an earlier version's ranks.parquet (empty for sweeps that keep ranks per trial)
    confirm: pd.DataFrame = field(default_factory=pd.DataFrame)
    confirm_ranks: pd.DataFrame = field(default_factory=pd.DataFrame)
    confirm_queries: pd.DataFrame = field(default_factory=pd.DataFrame)

    def ranks_of(self, trial_id: str, epoch: int) -> dict[str, np.ndarray]:
        """direction -> per-query ranks of one evaluation ({} when they are not on disk)."""
        if not self.ranks.empty:  # a sweep of an earlier version (a resume writes the new ones per trial)
            rows = self.ranks[(self.ranks["trial_id"] == trial_id) & (self.ranks["epoch"] == epoch)]
            if len(rows):
                return {str(d): np.asarray(r, dtype=np.int64) for d, r in zip(rows["direction"], rows["ranks"])}
        folder = self.trial_dirs().get(trial_id)
        return read_epoch(folder, epoch) if folder else {}

    def trial_dirs(self) -> dict[str, str]:
        if self.board.empty or "trial_dir" not in self.board:
            return {}
        return {str(t): str(d) for t, d in zip(self.board["trial_id"], self.board["trial_dir"]) if isinstance(d, str)}

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.run_dir.name)

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.meta.get("spec")
        return spec if isinstance(spec, dict) else {}

    def finished(self) -> pd.DataFrame:
        return self.board[self.board["status"].isin(FINISHED)] if not self.board.empty else self.board

    def with_results(self) -> pd.DataFrame:
        """Trials that have reported at least one evaluation (finished, stopped, running or errored)."""
        if self.board.empty or "best_epoch" not in self.board:
            return self.board.iloc[0:0]
        return self.board[self.board["best_epoch"].notna()]


def load_sweep(run_dir: str | Path) -> Sweep:
    """Read a sweep folder; a folder that is not a sweep, or unreadable tables, are UserErrors."""
    meta, board = open_sweep(run_dir)  # raises for a missing folder or sweep.json
    d = Path(run_dir)
    if not (d / "leaderboard.parquet").is_file():
        raise UserError(f"{d}: no leaderboard.parquet yet (the sweep has not started any trial)")
    tables = {}
    for name in (LEGACY_RANKS, *CONFIRM_TABLES):
        tables[name] = _readable(d / name, lambda p: read_table(p) if p.is_file() else pd.DataFrame())
    history = _readable(d / "history", lambda _: read_history(d))
    return Sweep(d, meta, board, history, tables[LEGACY_RANKS], tables["confirm.parquet"],
                 tables["confirm_ranks.parquet"], tables["confirm_queries.parquet"])


def _readable(path: Path, read: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    try:
        return read(path)
    except Exception as e:  # a damaged file from a disk problem: name it, no traceback
        raise UserError(f"{path}: not a readable Parquet table ({type(e).__name__})") from None


def resolve_metric(metric: str | None, spec: dict[str, Any]) -> tuple[str, str]:
    """(metric, mode): the given metric or the sweep's; the sweep's mode for its own metric."""
    name = metric or str(spec.get("metric") or "t2v_R1")
    if name not in METRIC_NAMES:
        raise UserError(f"unknown metric '{name}'{did_you_mean(name, METRIC_NAMES)} "
                        f"(metrics: {', '.join(METRIC_NAMES)})")
    mode = str(spec.get("mode")) if name == spec.get("metric") and spec.get("mode") in ("min", "max") \
        else MODE[name]
    return name, mode


def sort_key(row: Mapping[Any, Any], metric: str, mode: str) -> tuple[float, float, float, str]:
    """Smaller sorts first: the selection rule over trials (``vlp_sweep.selection.trial_key``)."""
    return trial_key(row, metric, mode)


def rank_trials(board: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Rows that have the metric, best first (see the module docstring for the tie-break)."""
    if board.empty or f"best_{metric}" not in board:
        return board.iloc[0:0]
    scored = board[board[f"best_{metric}"].notna()]
    records = scored.to_dict("records")
    order = sorted(range(len(records)), key=lambda i: sort_key(records[i], metric, mode))
    return scored.iloc[order].reset_index(drop=True)


def _json_dict(row: pd.Series | dict[str, Any], column: str) -> dict[str, Any]:
    """A JSON-object column of a leaderboard row; {} when missing or malformed."""
    raw = row.get(column)
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def trial_config(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """The trial's resolved trainer config (flat dotted keys) from its ``config_json`` column."""
    return _json_dict(row, "config_json")


def trial_params(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """The values the search algorithm sampled for the trial (``params`` column)."""
    return _json_dict(row, "params")


def inactive_keys(row: pd.Series | dict[str, Any], search: dict[str, Any]) -> frozenset[str]:
    """The conditional searched keys (``when:``) the trial did not draw, judged on the values it was
    sampled (``params``; grid rows from earlier versions hold every key): the trial ran with their base
    value or trainer default. A condition on such a key fails too. Empty for the baseline trial."""
    if is_baseline_trial(row):
        return frozenset()
    params, out = trial_params(row), set()
    changed = True
    while changed:  # to a fixed point: conditions can chain
        changed = False
        for key, entry in search.items():
            when = entry.get("when") if isinstance(entry, dict) else None
            if key in out or not when:
                continue
            if any(k in out or k not in params or not contains(tuple(vs if isinstance(vs, list) else [vs]), params[k])
                   for k, vs in when.items()):
                out.add(key)
                changed = True
    return frozenset(out)


def drawn_params(row: pd.Series | dict[str, Any], search: dict[str, Any]) -> dict[str, Any]:
    """The sampled params that applied to the trial: ``params`` without the inactive conditional keys."""
    inactive = inactive_keys(row, search)
    return {k: v for k, v in trial_params(row).items() if k not in inactive}


def is_baseline_trial(row: pd.Series | dict[str, Any]) -> bool:
    """Whether the row is the sweep's baseline trial (``baseline.run``), not a searched config."""
    return bool(trial_params(row).get(BASELINE_KEY))


def searched_only(board: pd.DataFrame) -> pd.DataFrame:
    """The rows of searched configs: option effects and importance must not see the baseline trial,
    which differs in keys the search does not vary."""
    if board.empty:
        return board
    return board[[not is_baseline_trial(r) for _, r in board.iterrows()]]

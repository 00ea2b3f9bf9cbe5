"""The trials as the leaderboard holds them: table lines, the config keys that vary, per-query ranks and
their bootstrap intervals, learning curves and errors.

These are the leaderboard's ``best_*`` columns, each trial at its own best epoch (what the search
selected on); the equal-budget analyses are in ``budgets.py`` and the modules that use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.report import stats
from vlp_sweep.report.types import TrialLine
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.tables.results import Sweep, inactive_keys, is_baseline_trial, trial_config

CI_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "v2t_R1", "v2t_R5", "v2t_R10")
# Config keys that differ between trials for bookkeeping reasons, not as a choice of the search.
NOT_A_CHOICE = ("run.out_dir", "run.num_threads", "run.select_metric")



def as_int(x: Any) -> int | None:
    v = finite_float(x)
    return None if v is None else int(v)


class RankIndex:
    """(trial id, epoch, direction) -> per-query ranks, read from the trial's folder when first asked for:
    a report needs a few evaluations' ranks (each listed trial's best epoch), not the whole sweep's."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.cache: dict[tuple[str, int], dict[str, np.ndarray]] = {}

    def _evaluation(self, trial_id: str, epoch: int) -> dict[str, np.ndarray]:
        if (trial_id, epoch) not in self.cache:
            self.cache[(trial_id, epoch)] = self.sweep.ranks_of(trial_id, epoch)
        return self.cache[(trial_id, epoch)]

    def __contains__(self, key: tuple[str, int, str]) -> bool:
        return key[2] in self._evaluation(key[0], key[1])

    def __getitem__(self, key: tuple[str, int, str]) -> np.ndarray:
        return self._evaluation(key[0], key[1])[key[2]]

    def get(self, key: tuple[str, int, str]) -> np.ndarray | None:
        return self._evaluation(key[0], key[1]).get(key[2])


def rank_index(sweep: Sweep) -> RankIndex:
    """(trial id, epoch, direction) -> per-query ranks (see :class:`RankIndex`)."""
    return RankIndex(sweep)


def ranks_of(index: RankIndex, trial_id: str, epoch: int | None) -> stats.Ranks | None:
    if epoch is None or (trial_id, epoch, "t2v") not in index:
        return None
    t2v, v2t = index[(trial_id, epoch, "t2v")], index.get((trial_id, epoch, "v2t"))
    return stats.Ranks(t2v, v2t if v2t is not None and v2t.shape == t2v.shape else None)


def varying_keys(board: pd.DataFrame, search: dict[str, Any]) -> list[str]:
    """Config keys whose value differs between trials, searched keys first in the space's order."""
    seen: dict[str, set[str]] = {}
    for _, row in board.iterrows():
        for k, v in trial_config(row).items():
            seen.setdefault(k, set()).add(repr(v))
    keys = [k for k, vals in seen.items() if len(vals) > 1 and k not in NOT_A_CHOICE]
    if not seen:  # rows without a config (never started properly): what the search sampled
        keys = list(search)
    return sorted(keys, key=lambda k: (list(search).index(k) if k in search else len(search), k))


def trial_line(row: pd.Series, varying: list[str], search: dict[str, Any]) -> TrialLine:
    cfg = trial_config(row)
    return TrialLine(trial_id=str(row["trial_id"]), status=str(row["status"]), epochs=as_int(row.get("epochs")),
                     best_epoch=as_int(row.get("best_epoch")), config={k: cfg.get(k) for k in varying},
                     metrics={m: finite_float(row.get(f"best_{m}")) for m in RETRIEVAL_METRICS + ("loss", "eval_loss")},
                     group_n=as_int(row.get("group_n")) or 1, baseline=is_baseline_trial(row),
                     inactive=inactive_keys(row, search))


def intervals(table: list[TrialLine], index: RankIndex, metric: str, resamples: int,
              seed: int) -> tuple[dict[str, dict[str, stats.Interval]], dict[str, int]]:
    """Bootstrap intervals over queries of each listed trial at its best epoch; and that epoch."""
    out: dict[str, dict[str, stats.Interval]] = {}
    epochs: dict[str, int] = {}
    wanted = CI_METRICS + ((metric,) if metric in RETRIEVAL_METRICS and metric not in CI_METRICS else ())
    for t in table:
        r = ranks_of(index, t.trial_id, t.best_epoch)
        if r is None:
            continue
        ms = tuple(m for m in wanted if r.v2t is not None or m.startswith("t2v"))
        out[t.trial_id] = stats.intervals(r, ms, resamples, seed=seed)
        epochs[t.trial_id] = int(t.best_epoch or 0)
    return out, epochs


def errors(board: pd.DataFrame) -> list[tuple[str, str]]:
    if board.empty:
        return []
    err = board[board["status"] == "ERROR"]
    return [(str(r["trial_id"]), str(r.get("error") or "error")) for _, r in err.iterrows()]


def curves(history: pd.DataFrame, trial_ids: list[str], metric: str,
           loss: str) -> dict[str, list[dict[str, float | None]]]:
    """Per trial, its evaluations in epoch order: the metric and the chosen loss column."""
    if history.empty:
        return {}
    out = {}
    for tid in trial_ids:
        h = history[history["trial_id"] == tid].sort_values("epoch")
        out[tid] = [{"epoch": float(r["epoch"]), metric: finite_float(r.get(metric)), loss: finite_float(r.get(loss))}
                    for _, r in h.iterrows()]
    return out


def curve_loss(history: pd.DataFrame, rows: pd.DataFrame) -> tuple[str, str]:
    """The loss to plot for these trials, and why: ``eval_loss`` includes the hard-negative term, so it
    means different things for trials with different ``loss.hard_negatives``; then the plain InfoNCE
    (``eval_infonce``) where history.parquet has it (sweeps from before it existed do not)."""
    modes = {str(trial_config(r).get("loss.hard_negatives", "none")) for _, r in rows.iterrows()}
    if len(modes) < 2:
        return "eval_loss", "eval loss"
    has_infonce = "eval_infonce" in history and history["eval_infonce"].notna().any()
    if has_infonce:
        return "eval_infonce", "eval InfoNCE (plain: comparable across hard-negative modes)"
    return "eval_loss", ("eval loss (with each trial's hard-negative term: not comparable across modes; "
                         "this sweep has no eval_infonce)")

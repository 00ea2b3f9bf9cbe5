"""Equal budgets: the epochs at which trials are compared, and each trial's metric at those epochs.

A trial's ``best_*`` columns come from its best epoch, and ASHA stops weak trials early, so comparing
those columns across trials compares a trial stopped at epoch 2 with one that ran to the end. The
per-key effects, the parameter importance and the expected best of n trials compare trials at one
epoch instead: at each ASHA rung, every trial with an evaluation at that epoch, with its metric at that
epoch (a row of the history); and at the full budget (the scheduler's ``max_t``). Without ASHA
the full budget is the only one.

The rungs are those of Ray Tune's ASHA with one bracket, as the driver builds it: milestones
``grace_period * reduction_factor**k`` below ``max_t`` (Ray's own count of rungs), a trial's result
counting at the first epoch at or past a milestone. A trial that evaluates every few epochs
(``run.eval_every``) counts at a budget only when it has an evaluation at exactly that epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.report.types import Budget
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.tables.results import drawn_params

MIN_TRIALS = 4  # trials at a budget below which importance and the expected best are not computed


@dataclass(frozen=True)
class Point:
    """One trial at one budget: the searched params it drew (active ones only) and its metric there."""

    trial_id: str
    params: dict[str, Any]
    value: float


@dataclass(frozen=True)
class Slice:
    """The trials at one budget."""

    budget: Budget
    points: tuple[Point, ...]


def rung_epochs(scheduler: dict[str, Any], max_t: int) -> list[int]:
    """The epochs of ASHA's rungs below ``max_t`` (empty without ASHA)."""
    if scheduler.get("type") != "asha":
        return []
    grace = float(scheduler.get("grace_period") or 1)
    rf = float(scheduler.get("reduction_factor") or 2)
    if grace <= 0 or rf <= 1 or max_t <= grace:
        return []
    count = int(np.log(max_t / grace) / np.log(rf) + 1)  # Ray's MAX_RUNGS for bracket 0
    milestones = (grace * rf**k for k in range(count))
    # A result counts at a rung from the first epoch at or past the milestone (1.5 -> epoch 2); a rung that
    # lands on max_t is the full budget.
    return sorted({e for m in milestones if m < max_t and (e := math.ceil(m - 1e-9)) < max_t})


def full_budget(spec: dict[str, Any], board: pd.DataFrame) -> int:
    """The scheduler's ``max_t`` (sweep.json), else the largest ``max_epochs`` of the leaderboard."""
    max_t = finite_float((spec.get("scheduler") or {}).get("max_t"))
    if max_t:
        return int(max_t)
    if "max_epochs" in board and board["max_epochs"].notna().any():
        return int(board["max_epochs"].max())
    return 0


def budget_epochs(spec: dict[str, Any], board: pd.DataFrame) -> list[tuple[int, str]]:
    """(epoch, label) of every budget, lowest first: the rungs, then the full budget."""
    max_t = full_budget(spec, board)
    rungs = rung_epochs(spec.get("scheduler") or {}, max_t)
    out = [(e, f"epoch {e} (rung {i})") for i, e in enumerate(rungs, 1)]
    return [*out, (max_t, f"epoch {max_t} (full budget)")] if max_t else out


def slices(spec: dict[str, Any], board: pd.DataFrame, rows: pd.DataFrame, history: pd.DataFrame,
           metric: str) -> list[Slice]:
    """The trials of ``rows`` at every budget, with ``metric`` at that epoch from ``history``."""
    search = spec.get("search") or {}
    values = _values(history, metric)
    trials = [(str(r["trial_id"]), drawn_params(r, search), finite_float(r.get("epochs")) or 0)
              for _, r in rows.iterrows()]
    out = []
    for epoch, label in budget_epochs(spec, board):
        points = tuple(Point(tid, params, values[(tid, epoch)]) for tid, params, _ in trials
                       if (tid, epoch) in values)
        no_eval = sum(1 for tid, _, last in trials if last >= epoch and (tid, epoch) not in values)
        out.append(Slice(Budget(epoch, label, len(points), no_eval), points))
    return out


def _values(history: pd.DataFrame, metric: str) -> dict[tuple[str, int], float]:
    """(trial id, epoch) -> the metric of that evaluation, where it is a finite number."""
    if history.empty or metric not in history:
        return {}
    out = {}
    for tid, epoch, v in zip(history["trial_id"], history["epoch"], history[metric]):
        value = finite_float(v)
        if value is not None:
            out[(str(tid), int(epoch))] = value
    return out

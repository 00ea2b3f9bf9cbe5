"""The effect of each searched key: the metric by value, at each equal budget (``budgets.py``).

At a budget, the trials where the key was active are grouped by the value they drew (a continuous key:
up to three bins of similar size, fixed over all budgets so that rows line up); each group gets the mean
of its trials' metric at that epoch with a Student-t interval over the trials, clipped to the metric's
range. A group of one trial has no interval. Other keys vary too, so these are marginal effects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from vlp_sweep.report import stats
from vlp_sweep.report.budgets import Slice
from vlp_sweep.report.types import Effect, EffectAt, EffectRow
from vlp_sweep.report.values import metric_range, same, value_label
from vlp_sweep.selection import finite_float

Labeller = Callable[[Any], "str | None"]


def effects(slices: list[Slice], search: dict[str, Any], metric: str) -> list[Effect]:
    """One :class:`Effect` per searched key, with its rows at every budget that has trials."""
    out = []
    for key, entry in search.items():
        entry = entry if isinstance(entry, dict) else {}
        categorical = "choice" in entry or "grid" in entry
        if categorical:
            labels, label_of = _choices(list(entry.get("choice") or entry.get("grid") or []))
        else:
            labels, label_of = _bins(slices, key)
        log = "loguniform" in entry or bool(entry.get("log"))
        at = [_at(s, key, labels, label_of, metric) for s in slices if s.points]
        out.append(Effect(key, "categorical" if categorical else "continuous", log, labels, at))
    return out


def _at(s: Slice, key: str, labels: list[str], label_of: Labeller, metric: str) -> EffectAt:
    pts = [(p.params[key], p.value, p.trial_id) for p in s.points if key in p.params]
    rows = []
    for label in labels:
        ys = [y for v, y, _ in pts if label_of(v) == label]
        if ys:
            rows.append(EffectRow(label, len(ys), mean_over_trials(ys, metric)))
    return EffectAt(s.budget, rows, pts, inactive=len(s.points) - len(pts))


def mean_over_trials(ys: list[float], metric: str) -> stats.Interval:
    """Mean over trials with its t interval, clipped to the metric's range (a t interval of few trials
    can reach past 0 % or 100 %, which no trial could score); NaN bounds for one trial."""
    iv = stats.mean_interval(ys)
    lo, hi = metric_range(metric)
    if iv.n < 2:
        return iv
    return replace(iv, low=max(iv.low, lo), high=min(iv.high, hi))


def _choices(values: list[Any]) -> tuple[list[str], Labeller]:
    labels = [value_label(v) for v in values]

    def label_of(x: Any) -> str | None:
        return next((lab for v, lab in zip(values, labels) if same(x, v)), None)

    return labels, label_of


def _bins(slices: list[Slice], key: str) -> tuple[list[str], Labeller]:
    """Up to three bins of similar size over the distinct trials that drew the key (at any budget)."""
    drawn = {p.trial_id: finite_float(p.params[key]) for s in slices for p in s.points if key in p.params}
    num = sorted(v for v in drawn.values() if v is not None)
    if not num:
        return [], lambda x: None
    split = np.array_split(np.arange(len(num)), min(3, len(num)))
    # Many equal values can give two bins the same range: keep it once (a value goes to its first bin).
    ranges = list(dict.fromkeys((num[b[0]], num[b[-1]]) for b in split if len(b)))
    labels = [_range_label(lo, hi) for lo, hi in ranges]

    def label_of(x: Any) -> str | None:
        v = finite_float(x)
        return next((lab for (lo, hi), lab in zip(ranges, labels) if v is not None and lo <= v <= hi), None)

    return labels, label_of


def _range_label(lo: float, hi: float) -> str:
    a, b = value_label(float(lo)), value_label(float(hi))
    return a if a == b else f"{a} .. {b}"

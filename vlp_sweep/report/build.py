"""Compute what a report states from a sweep's Parquet tables and sweep.json (no rendering here).

Which trials count where:
- the leaderboard table ranks every trial that has reported an evaluation (running ones too, marked);
- the best trial, the runner-up, the targets and the per-option effects use finished trials only
  (TERMINATED or STOPPED), so a snapshot of a running sweep never crowns a half-trained trial;
- confidence intervals and comparisons use the per-query ranks of each trial's ``best_epoch`` (the
  epoch whose metrics the leaderboard row holds).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import MODE, RETRIEVAL_METRICS
from vlp_sweep.report import stats
from vlp_sweep.report.importance import Importance, param_importance
from vlp_sweep.report.select import (
    Sweep,
    drawn_params,
    inactive_keys,
    is_baseline_trial,
    rank_trials,
    resolve_metric,
    searched_only,
    trial_config,
)
from vlp_sweep.sweep.leaderboard import finite_float

TABLE_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR", "v2t_R1", "v2t_R5", "v2t_R10", "rsum")
KEY_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR")  # the plan's baseline and targets are stated in these
CI_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "v2t_R1", "v2t_R5", "v2t_R10")
# Config keys that differ between trials for bookkeeping reasons, not as a choice of the search.
NOT_A_CHOICE = ("run.out_dir", "run.num_threads", "run.select_metric")
CURVES = 8  # learning curves drawn (the top trials)


@dataclass
class TrialLine:
    trial_id: str
    status: str
    epochs: int | None
    best_epoch: int | None
    config: dict[str, Any]  # the varying config keys
    metrics: dict[str, float | None]  # best_* columns
    group_n: int = 1
    baseline: bool = False  # the sweep's baseline trial (baseline.run)
    inactive: frozenset[str] = frozenset()  # conditional keys not drawn: their base value or default applied


@dataclass
class Compared:
    label: str  # "best vs runner-up"
    a: str  # trial ids or a baseline name
    b: str
    result: stats.Comparison | None = None
    note: str = ""


@dataclass
class Baseline:
    name: str
    source: str  # "trial <id>", "metrics in the spec", or "" when the sweep has no usable baseline
    trial_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


@dataclass
class TargetRow:
    metric: str
    baseline: float | None
    best: float | None
    interval: stats.Interval | None
    levels: list[tuple[str, float, bool | None]]  # (level, threshold, passed)


@dataclass
class EffectRow:
    label: str
    n: int
    mean: stats.Interval
    best: float


@dataclass
class Effect:
    key: str
    kind: str  # categorical | continuous
    log: bool
    rows: list[EffectRow]
    points: list[tuple[Any, float, float, float, str]]  # (value, metric, ci low, ci high, trial id)
    inactive: int = 0


@dataclass
class Report:
    sweep: str
    run_dir: str
    sweep_status: str
    generated: str
    metric: str
    mode: str
    counts: dict[str, int]
    varying: list[str]
    table: list[TrialLine]
    best: TrialLine | None
    intervals: dict[str, dict[str, stats.Interval]]
    interval_epochs: dict[str, int]
    comparisons: list[Compared]
    baseline: Baseline | None
    targets: list[TargetRow]
    effects: list[Effect]
    importance: Importance
    errors: list[tuple[str, str]]
    curves: dict[str, list[dict[str, float | None]]]
    sources: list[str]
    notes: list[str] = field(default_factory=list)
    resamples: int = stats.RESAMPLES
    level: float = stats.LEVEL


# ---------------------------------------------------------------- small readers




def _i(x: Any) -> int | None:
    v = finite_float(x)
    return None if v is None else int(v)


def _rank_index(sweep: Sweep) -> dict[tuple[str, int, str], np.ndarray]:
    if sweep.ranks.empty:
        return {}
    return {(str(r["trial_id"]), int(r["epoch"]), str(r["direction"])): np.asarray(r["ranks"], dtype=np.int64)
            for r in sweep.ranks.to_dict("records")}


def ranks_of(index: dict[tuple[str, int, str], np.ndarray], trial_id: str, epoch: int | None) -> stats.Ranks | None:
    if epoch is None or (trial_id, epoch, "t2v") not in index:
        return None
    t2v, v2t = index[(trial_id, epoch, "t2v")], index.get((trial_id, epoch, "v2t"))
    return stats.Ranks(t2v, v2t if v2t is not None and v2t.shape == t2v.shape else None)


def _varying(board: pd.DataFrame, search: dict[str, Any]) -> list[str]:
    seen: dict[str, set[str]] = {}
    for _, row in board.iterrows():
        for k, v in trial_config(row).items():
            seen.setdefault(k, set()).add(repr(v))
    keys = [k for k, vals in seen.items() if len(vals) > 1 and k not in NOT_A_CHOICE]
    if not seen:  # rows without a config (never started properly): what the search sampled
        keys = list(search)
    return sorted(keys, key=lambda k: (list(search).index(k) if k in search else len(search), k))


def _line(row: pd.Series, varying: list[str], search: dict[str, Any]) -> TrialLine:
    cfg = trial_config(row)
    return TrialLine(trial_id=str(row["trial_id"]), status=str(row["status"]), epochs=_i(row.get("epochs")),
                     best_epoch=_i(row.get("best_epoch")), config={k: cfg.get(k) for k in varying},
                     metrics={m: finite_float(row.get(f"best_{m}")) for m in RETRIEVAL_METRICS + ("loss", "eval_loss")},
                     group_n=_i(row.get("group_n")) or 1, baseline=is_baseline_trial(row),
                     inactive=inactive_keys(row, search))


# ---------------------------------------------------------------- build


def build_report(sweep: Sweep, metric: str | None = None, top: int = 10, resamples: int = stats.RESAMPLES,
                 seed: int = stats.SEED) -> Report:
    """Everything the report shows, from the sweep's tables. UserError when nothing has finished."""
    metric, mode = resolve_metric(metric, sweep.spec)
    if top < 1:
        raise UserError(f"--top must be >= 1, got {top}")
    finished = rank_trials(sweep.finished(), metric, mode)
    if finished.empty:
        raise UserError(_nothing_finished(sweep))
    search = sweep.spec.get("search") or {}
    varying = _varying(sweep.board, search)
    ranked = rank_trials(sweep.with_results(), metric, mode)
    table = [_line(r, varying, search) for _, r in ranked.head(top).iterrows()]
    index = _rank_index(sweep)
    cis, epochs = _intervals(table, index, metric, resamples, seed)
    best = _line(finished.iloc[0], varying, search)
    baseline, base_row = _baseline(sweep, metric, mode)
    notes = _notes(sweep, ranked, finished)
    searched = searched_only(finished)
    return Report(
        sweep=sweep.name, run_dir=str(sweep.run_dir), sweep_status=str(sweep.meta.get("status", "unknown")),
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), metric=metric, mode=mode,
        counts={str(k): int(v) for k, v in sweep.board["status"].value_counts().items()},
        varying=varying, table=table, best=best, intervals=cis, interval_epochs=epochs,
        comparisons=_comparisons(finished, base_row, baseline, index, metric, resamples, seed),
        baseline=baseline, targets=_targets(sweep.spec, best, baseline, index, metric, resamples, seed),
        effects=_effects(searched, search, index, metric, resamples, seed),
        importance=param_importance(searched, search, metric, mode), errors=_errors(sweep.board),
        curves=_curves(sweep.history, [t.trial_id for t in table[:CURVES]], metric), sources=_sources(sweep),
        notes=notes, resamples=resamples)


def _nothing_finished(sweep: Sweep) -> str:
    counts = sweep.board["status"].value_counts().to_dict() if not sweep.board.empty else {}
    summary = ", ".join(f"{v} {str(k).lower()}" for k, v in sorted(counts.items(), key=str)) or "no trials"
    msg = f"no finished trial in {sweep.run_dir} ({summary}): nothing to report yet"
    errors = sweep.board[sweep.board["status"] == "ERROR"] if counts else sweep.board
    if len(errors):
        r = errors.iloc[0]
        msg += f"; first error, trial {r['trial_id']}: {r.get('error')}"
    return msg


def _notes(sweep: Sweep, ranked: pd.DataFrame, finished: pd.DataFrame) -> list[str]:
    notes = []
    running = int((ranked["status"] == "RUNNING").sum()) if not ranked.empty else 0
    if sweep.meta.get("status") != "finished" or running:
        notes.append(f"snapshot of a sweep still running ({running} trial{'s' if running != 1 else ''} running): "
                     "numbers will change; "
                     "the best trial, comparisons, targets and effects use finished trials only")
    stopped = int((finished["status"] == "STOPPED").sum())
    if stopped:
        notes.append(f"{stopped} finished trial{'s were' if stopped != 1 else ' was'} stopped early by the "
                     "scheduler: their numbers come from fewer epochs")
    return notes


def _intervals(table: list[TrialLine], index: dict[tuple[str, int, str], np.ndarray], metric: str,
               resamples: int, seed: int) -> tuple[dict[str, dict[str, stats.Interval]], dict[str, int]]:
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


# ---------------------------------------------------------------- baseline and comparisons


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    fa, fb = finite_float(a), finite_float(b)
    if fa is not None and fb is not None and not isinstance(a, str) and not isinstance(b, str):
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _matches(cfg: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(k in cfg and _same(cfg[k], v) for k, v in want.items())


def _baseline(sweep: Sweep, metric: str, mode: str) -> tuple[Baseline | None, pd.Series | None]:
    """The spec's baseline: a finished trial whose config matches its ``config`` (then its ranks are
    used), else its ``metrics`` (numbers only)."""
    spec_b = sweep.spec.get("baseline")
    if not isinstance(spec_b, dict) or not spec_b:
        return None, None
    name = str(spec_b.get("name") or "baseline")
    want = spec_b.get("config") or {}
    notes = []
    if want:
        fin = sweep.finished()
        rows = list(fin.iterrows())
        # The baseline trial itself (baseline.run), else any finished trial that ran its config.
        match = [i for i, (_, row) in enumerate(rows) if is_baseline_trial(row)] or \
            [i for i, (_, row) in enumerate(rows) if _matches(trial_config(row), want)]
        if match:
            row = rank_trials(fin.iloc[match], metric, mode).iloc[0]
            metrics = {m: v for m in RETRIEVAL_METRICS if (v := finite_float(row.get(f"best_{m}"))) is not None}
            what = "the sweep ran it as a trial (baseline.run)" if is_baseline_trial(row) else \
                "a finished trial matches its config"
            note = f"{what}: {len(match)} finished trials, the best is used" if len(match) > 1 else what
            return Baseline(name, f"trial {row['trial_id']}", str(row["trial_id"]), metrics, note), row
        notes.append("no finished trial ran the baseline config")
    given = {str(k): float(v) for k, v in (spec_b.get("metrics") or {}).items() if finite_float(v) is not None}
    if given:
        return Baseline(name, "metrics in the spec", None, given, "; ".join(notes)), None
    return Baseline(name, "", None, {}, "; ".join(notes) or "the baseline gives no metrics"), None


def _comparisons(finished: pd.DataFrame, base_row: pd.Series | None, baseline: Baseline | None,
                 index: dict[tuple[str, int, str], np.ndarray], metric: str, resamples: int,
                 seed: int) -> list[Compared]:
    cmp_metric = metric if metric in RETRIEVAL_METRICS else "t2v_R1"
    best = finished.iloc[0]
    bid = str(best["trial_id"])
    r_best = ranks_of(index, bid, _i(best["best_epoch"]))
    out = []
    if len(finished) > 1:
        ru = finished.iloc[1]
        out.append(_paired("best vs runner-up", bid, str(ru["trial_id"]), r_best,
                           ranks_of(index, str(ru["trial_id"]), _i(ru["best_epoch"])), cmp_metric, resamples, seed))
    else:
        out.append(Compared("best vs runner-up", bid, "-", note="only one finished trial"))
    if baseline is not None:
        out.append(_vs_baseline(bid, r_best, base_row, baseline, index, cmp_metric, resamples, seed))
    if cmp_metric != metric:
        for c in out:
            c.note = "; ".join(x for x in (c.note, f"{metric} has no per-query values: compared on {cmp_metric}")
                               if x)
    return out


def _paired(label: str, a: str, b: str, ra: stats.Ranks | None, rb: stats.Ranks | None, metric: str,
            resamples: int, seed: int) -> Compared:
    if ra is None or rb is None:
        return Compared(label, a, b, note="per-query ranks missing in ranks.parquet")
    if len(ra) != len(rb):
        return Compared(label, a, b, note=f"evaluated on different query sets ({len(ra)} vs {len(rb)} queries)")
    if metric.startswith(("v2t", "mean", "rsum")) and (ra.v2t is None or rb.v2t is None):
        return Compared(label, a, b, note="v2t ranks missing in ranks.parquet")
    return Compared(label, a, b, stats.paired(ra, rb, metric, resamples, seed=seed))


def _vs_baseline(bid: str, r_best: stats.Ranks | None, base_row: pd.Series | None, baseline: Baseline,
                 index: dict[tuple[str, int, str], np.ndarray], metric: str, resamples: int, seed: int) -> Compared:
    label = "best vs baseline"
    if base_row is not None:
        tid = str(base_row["trial_id"])
        if tid == bid:
            return Compared(label, bid, baseline.name, note="the best trial is the baseline config")
        c = _paired(label, bid, f"{baseline.name} (trial {tid})", r_best,
                    ranks_of(index, tid, _i(base_row["best_epoch"])), metric, resamples, seed)
        return c
    if metric in baseline.metrics and r_best is not None:
        res = stats.one_sample(r_best, baseline.metrics[metric], metric, resamples, seed=seed)
        return Compared(label, bid, baseline.name, res,
                        note="the baseline is a number without per-query ranks: one-sample bootstrap of the best "
                             "trial against it (the baseline's own uncertainty is not included)")
    why = baseline.note or f"the baseline gives no {metric}"
    return Compared(label, bid, baseline.name, note=why)


# ---------------------------------------------------------------- targets


def _targets(spec: dict[str, Any], best: TrialLine, baseline: Baseline | None,
             index: dict[tuple[str, int, str], np.ndarray], metric: str, resamples: int,
             seed: int) -> list[TargetRow]:
    targets = spec.get("targets") or {}
    if not targets and (baseline is None or not baseline.metrics):
        return []
    # The targets' metrics, the sweep's, then what the baseline states (a trial baseline: the plan's four).
    given = KEY_METRICS if baseline is not None and baseline.trial_id else tuple(baseline.metrics if baseline else ())
    metrics: list[str] = []
    for m in [*(m for table in targets.values() for m in table), metric, *given]:
        if m not in metrics:
            metrics.append(m)
    r = ranks_of(index, best.trial_id, best.best_epoch)
    rows = []
    for m in metrics:
        value = best.metrics.get(m)
        ci = None
        if r is not None and m in RETRIEVAL_METRICS and (r.v2t is not None or m.startswith("t2v")):
            ci = stats.intervals(r, (m,), resamples, seed=seed)[m]
        levels = []
        for level, table in targets.items():
            if m in table:
                thr = float(table[m])
                ok = None if value is None else (value >= thr if MODE.get(m, "max") == "max" else value <= thr)
                levels.append((str(level), thr, ok))
        rows.append(TargetRow(m, baseline.metrics.get(m) if baseline else None, value, ci, levels))
    return rows


# ---------------------------------------------------------------- per-option effects


def _effects(finished: pd.DataFrame, search: dict[str, Any], index: dict[tuple[str, int, str], np.ndarray],
             metric: str, resamples: int, seed: int) -> list[Effect]:
    cis = {}
    if metric in RETRIEVAL_METRICS:
        for _, row in finished.iterrows():
            r = ranks_of(index, str(row["trial_id"]), _i(row["best_epoch"]))
            if r is not None and (r.v2t is not None or metric.startswith("t2v")):
                cis[str(row["trial_id"])] = stats.intervals(r, (metric,), resamples, seed=seed)[metric]
    out = []
    drawn = [(drawn_params(row, search), str(row["trial_id"]), finite_float(row.get(f"best_{metric}")))
             for _, row in finished.iterrows()]
    for key, entry in search.items():
        pts, inactive = [], 0
        for params, tid, y in drawn:
            if y is None:
                continue
            if key not in params:
                inactive += 1
                continue
            ci = cis.get(tid)
            pts.append((params[key], y, ci.low if ci else math.nan, ci.high if ci else math.nan, tid))
        categorical = isinstance(entry, dict) and ("choice" in entry or "grid" in entry)
        rows = _categorical_rows(pts, entry, metric) if categorical else _binned_rows(pts, metric)
        log = isinstance(entry, dict) and ("loguniform" in entry or bool(entry.get("log")))
        out.append(Effect(key, "categorical" if categorical else "continuous", log, rows, pts, inactive))
    return out


def value_label(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "null"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: R@k in percent, rsum the sum of six of them, ranks from 1."""
    if metric == "rsum":
        return 0.0, 600.0
    if metric.endswith(("MedR", "MeanR")):
        return 1.0, math.inf
    if metric in RETRIEVAL_METRICS:
        return 0.0, 100.0
    return -math.inf, math.inf


def _mean(ys: list[float], metric: str) -> stats.Interval:
    """Mean over trials with its t interval, clipped to the metric's range (a t interval of few trials
    can reach past 0 % or 100 %, which no trial could score)."""
    iv = stats.mean_interval(ys)
    lo, hi = metric_range(metric)
    if math.isnan(iv.low):
        return iv
    return replace(iv, low=max(iv.low, lo), high=min(iv.high, hi))


def _categorical_rows(pts: list[tuple[Any, float, float, float, str]], entry: dict[str, Any],
                      metric: str) -> list[EffectRow]:
    values = list(entry.get("choice", entry.get("grid", [])))
    rows = []
    for v in values:
        ys = [p[1] for p in pts if _same(p[0], v)]
        if ys:
            rows.append(EffectRow(value_label(v), len(ys), _mean(ys, metric), max(ys)))
    return rows


def _binned_rows(pts: list[tuple[Any, float, float, float, str]], metric: str) -> list[EffectRow]:
    """Continuous keys: trials sorted by value, split into up to three bins of similar size."""
    num = sorted((p for p in pts if finite_float(p[0]) is not None), key=lambda p: float(p[0]))
    if not num:
        return []
    bins = [b for b in np.array_split(np.arange(len(num)), min(3, len(num))) if len(b)]
    rows = []
    for b in bins:
        group = [num[i] for i in b]
        lo, hi = value_label(float(group[0][0])), value_label(float(group[-1][0]))
        ys = [p[1] for p in group]
        rows.append(EffectRow(lo if lo == hi else f"{lo} .. {hi}", len(ys), _mean(ys, metric), max(ys)))
    return rows


# ---------------------------------------------------------------- the rest


def _errors(board: pd.DataFrame) -> list[tuple[str, str]]:
    if board.empty:
        return []
    err = board[board["status"] == "ERROR"]
    return [(str(r["trial_id"]), str(r.get("error") or "error")) for _, r in err.iterrows()]


def _curves(history: pd.DataFrame, trial_ids: list[str], metric: str) -> dict[str, list[dict[str, float | None]]]:
    if history.empty:
        return {}
    out = {}
    for tid in trial_ids:
        h = history[history["trial_id"] == tid].sort_values("epoch")
        out[tid] = [{"epoch": float(r["epoch"]), metric: finite_float(r.get(metric)),
                     "loss": finite_float(r.get("loss")), "eval_loss": finite_float(r.get("eval_loss"))}
                    for _, r in h.iterrows()]
    return out


def _sources(sweep: Sweep) -> list[str]:
    d = sweep.run_dir
    out = [f"{d / 'sweep.json'}: spec (metric, search space, baseline, targets), status "
           f"{sweep.meta.get('status', 'unknown')}, updated {sweep.meta.get('updated', '?')}"]
    updated = ""
    if not sweep.board.empty and "updated_at" in sweep.board:
        updated = f", last row update {pd.Timestamp(sweep.board['updated_at'].max()).isoformat()}"
    out.append(f"{d / 'leaderboard.parquet'}: {len(sweep.board)} rows (one per trial){updated}: every best_*, "
               "status, config and error shown")
    out.append(f"{d / 'history.parquet'}: {len(sweep.history)} rows (one per trial and evaluation): "
               "learning curves")
    out.append(f"{d / 'ranks.parquet'}: {len(sweep.ranks)} rows (per-query ranks per trial, epoch and "
               "direction): intervals and comparisons, at each trial's best_epoch")
    return out

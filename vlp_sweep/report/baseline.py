"""The baseline, the comparisons of the best trial with the runner-up and the baseline, and the targets.

The baseline is the sweep's baseline trial (``baseline.run``), else a finished trial that ran the
baseline's config (both on the sweep's own data: compared query by query), else the numbers the spec
gives (the plan's, measured on its data). When the sweep ran on synthetic data (``datasource.py``), the
spec's numbers and the targets come from another dataset: they are shown as reference numbers and
nothing is judged against them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from vlp_sweep.metric_names import MODE, RETRIEVAL_METRICS
from vlp_sweep.report import stats
from vlp_sweep.report.trials import RankIndex, as_int, ranks_of
from vlp_sweep.report.types import Baseline, Compared, DataSource, TargetRow, TrialLine
from vlp_sweep.report.values import same
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.tables.results import Sweep, is_baseline_trial, rank_trials, trial_config

KEY_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR")  # the plan's baseline and targets are stated in these
REFERENCE_NOTE = ("measured on other data (the plan's); this sweep ran on synthetic data: shown for reference, "
                  "not compared")


def _matches(cfg: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(k in cfg and same(cfg[k], v) for k, v in want.items())


def find_baseline(sweep: Sweep, metric: str, mode: str, data: DataSource) -> tuple[Baseline | None, pd.Series | None]:
    """The spec's baseline: a finished trial that ran it (then its ranks are used), else its ``metrics``."""
    spec_b = sweep.spec.get("baseline")
    if not isinstance(spec_b, dict) or not spec_b:
        return None, None
    name = str(spec_b.get("name") or "baseline")
    want = spec_b.get("config") or {}
    given = {str(k): float(v) for k, v in (spec_b.get("metrics") or {}).items() if finite_float(v) is not None}
    reference = data.synthetic and bool(given)
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
            return Baseline(name, f"trial {row['trial_id']}", str(row["trial_id"]), metrics, note, given,
                            reference), row
        notes.append("no finished trial ran the baseline config")
    if given:
        if reference:
            notes.append(REFERENCE_NOTE)
        return Baseline(name, "metrics in the spec", None, given, "; ".join(notes), given, reference), None
    return Baseline(name, "", None, {}, "; ".join(notes) or "the baseline gives no metrics"), None


def comparisons(finished: pd.DataFrame, base_row: pd.Series | None, baseline: Baseline | None, index: RankIndex,
                metric: str, resamples: int, seed: int, history: pd.DataFrame) -> list[Compared]:
    """The best finished trial against the runner-up at the last epoch both reached (equal footing; left out
    when they share no evaluated epoch), and against the baseline, each at its best epoch (double-selected),
    paired over queries. Selection numbers: none carries a verdict."""
    cmp_metric = metric if metric in RETRIEVAL_METRICS else "t2v_R1"
    best = finished.iloc[0]
    bid = str(best["trial_id"])
    r_best = ranks_of(index, bid, as_int(best["best_epoch"]))
    out = []
    if len(finished) > 1:
        rid = str(finished.iloc[1]["trial_id"])
        epoch = last_common_epoch(index, history, bid, rid)
        if epoch is not None:
            c = _paired("best vs runner-up", bid, rid, ranks_of(index, bid, epoch), ranks_of(index, rid, epoch),
                        cmp_metric, resamples, seed)
            c.epoch = epoch
            out.append(c)
    else:
        out.append(Compared("best vs runner-up", bid, "-", note="only one finished trial"))
    if baseline is not None:
        vs = _vs_baseline(bid, r_best, base_row, baseline, index, cmp_metric, resamples, seed)
        vs.double_selected = vs.result is not None
        out.append(vs)
    if cmp_metric != metric:
        for c in out:
            c.note = "; ".join(x for x in (c.note, f"{metric} has no per-query values: compared on {cmp_metric}")
                               if x)
    return out


def last_common_epoch(index: RankIndex, history: pd.DataFrame | None, a: str, b: str) -> int | None:
    """The last epoch both trials were evaluated at (the history table) and have per-query ranks for: an
    ASHA-stopped runner-up's last rung. None without a history or a common epoch."""
    if history is None or history.empty:
        return None
    epochs = [{int(e) for e in history.loc[history["trial_id"] == tid, "epoch"]} for tid in (a, b)]
    return max((e for e in epochs[0] & epochs[1] if (a, e, "t2v") in index and (b, e, "t2v") in index),
               default=None)


def _paired(label: str, a: str, b: str, ra: stats.Ranks | None, rb: stats.Ranks | None, metric: str,
            resamples: int, seed: int) -> Compared:
    if ra is None or rb is None:
        return Compared(label, a, b, note="per-query ranks missing (the trial's ranks/ folder)")
    if len(ra) != len(rb):
        return Compared(label, a, b, note=f"evaluated on different query sets ({len(ra)} vs {len(rb)} queries)")
    if metric.startswith(("v2t", "mean", "rsum")) and (ra.v2t is None or rb.v2t is None):
        return Compared(label, a, b, note="v2t ranks missing (the trial's ranks/ folder)")
    return Compared(label, a, b, stats.paired(ra, rb, metric, resamples, seed=seed))


def _vs_baseline(bid: str, r_best: stats.Ranks | None, base_row: pd.Series | None, baseline: Baseline,
                 index: RankIndex, metric: str, resamples: int, seed: int) -> Compared:
    label = "best vs baseline"
    if base_row is not None:
        tid = str(base_row["trial_id"])
        if tid == bid:
            return Compared(label, bid, baseline.name, note="the best trial is the baseline config")
        return _paired(label, bid, f"{baseline.name} (trial {tid})", r_best,
                       ranks_of(index, tid, as_int(base_row["best_epoch"])), metric, resamples, seed)
    if baseline.reference and not baseline.trial_id:
        return Compared(label, bid, baseline.name, note=f"the baseline's numbers are {REFERENCE_NOTE}")
    if metric in baseline.metrics and r_best is not None:
        res = stats.one_sample(r_best, baseline.metrics[metric], metric, resamples, seed=seed)
        return Compared(label, bid, baseline.name, res,
                        note="the baseline is a number without per-query ranks: one-sample bootstrap of the best "
                             "trial against it (the baseline's own uncertainty is not included)")
    return Compared(label, bid, baseline.name, note=baseline.note or f"the baseline gives no {metric}")


def targets(spec: dict[str, Any], best: TrialLine, baseline: Baseline | None, index: RankIndex, metric: str,
            data: DataSource, resamples: int, seed: int) -> list[TargetRow]:
    """Per metric: the baseline, the best trial with its interval, and each target level (pass/fail, or
    None where the targets are reference numbers from other data)."""
    levels = spec.get("targets") or {}
    if not levels and (baseline is None or not baseline.metrics):
        return []
    # The targets' metrics, the sweep's, then what the baseline states (a trial baseline: the plan's four).
    given = KEY_METRICS if baseline is not None and baseline.trial_id else tuple(baseline.metrics if baseline else ())
    metrics = list(dict.fromkeys([*(m for table in levels.values() for m in table), metric, *given]))
    r = ranks_of(index, best.trial_id, best.best_epoch)
    rows = []
    for m in metrics:
        value = best.metrics.get(m)
        ci = None
        if r is not None and m in RETRIEVAL_METRICS and (r.v2t is not None or m.startswith("t2v")):
            ci = stats.intervals(r, (m,), resamples, seed=seed)[m]
        judged = [(str(level), float(table[m]), _passes(m, value, float(table[m]), data))
                  for level, table in levels.items() if m in table]
        stated = baseline.stated.get(m) if baseline is not None and baseline.trial_id else None
        rows.append(TargetRow(m, baseline.metrics.get(m) if baseline else None, stated, value, ci, judged))
    return rows


def _passes(metric: str, value: float | None, threshold: float, data: DataSource) -> bool | None:
    if value is None or data.synthetic:  # no verdict against numbers from another dataset
        return None
    return value >= threshold if MODE.get(metric, "max") == "max" else value <= threshold

"""The report's headline: the confirmation stage (confirm.parquet, confirm_ranks.parquet).

Per configuration: the mean test metric over its seeds with a two-level bootstrap interval (seeds, then
queries); each searched configuration against the baseline config on the same test queries, pooled over
seeds, Holm-adjusted across the comparisons, with the probability of improvement. The winner is the
configuration with the best *dev* mean over seeds (so the test split plays no part in choosing it; this is
what ``promote`` installs); it is named as confirmed only when its comparison with the baseline holds.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.metric_names import MODE, RETRIEVAL_METRICS
from vlp_sweep.report import seed_stats, stats
from vlp_sweep.report.types import Confirmed, ConfirmedComparison, ConfirmedConfig, ConfirmedRun
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.results import Sweep

BASELINE_ID = "baseline"


def analyse(sweep: Sweep, metric: str, mode: str, resamples: int, seed: int) -> Confirmed | None:
    """None when the space has no confirmation stage; else what the stage found (or why nothing yet)."""
    conf = sweep.spec.get("confirm")
    if not isinstance(conf, dict):
        return None
    metric = metric if metric in RETRIEVAL_METRICS else "t2v_R1"
    out = Confirmed(metric, str(conf.get("split")), [int(s) for s in conf.get("seeds") or []], None)
    if sweep.confirm.empty:
        out.note = ("the confirmation stage has not run (the search is unfinished or was interrupted; "
                    "`vlp-sweep run SPACE --resume` continues it)")
        out.headline = f"Not confirmed yet: {out.note}."
        return out
    ranks = _test_ranks(sweep.confirm_ranks)
    out.configs = [_config(cid, rows, ranks, metric, resamples, seed, _varying(sweep.confirm))
                   for cid, rows in sweep.confirm.groupby("config_id", sort=False)]
    for c in out.configs:
        c.inactive = _inactive(sweep, c)
    out.n_queries = next((c.test.n for c in out.configs if c.test is not None), None)
    out.comparisons = _comparisons(out.configs, ranks, metric, resamples, seed)
    _pick_winner(out, mode)
    out.headline = headline(out)
    return out


def _test_ranks(table: pd.DataFrame) -> dict[str, stats.Ranks]:
    """trial_id -> its selected checkpoint's test ranks."""
    if table.empty:
        return {}
    test = table[table["split"] == "test"]
    out = {}
    for tid, g in test.groupby("trial_id"):
        by_dir = {d: np.asarray(r, dtype=np.int64) for d, r in zip(g["direction"], g["ranks"])}
        if "t2v" in by_dir:
            out[str(tid)] = stats.Ranks(by_dir["t2v"], by_dir.get("v2t"))
    return out


def _varying(table: pd.DataFrame) -> list[str]:
    """Config keys whose values differ between the confirmed configurations."""
    configs = [json.loads(c) for c in table.drop_duplicates("config_id")["config_json"]]
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def _inactive(sweep: Sweep, c: ConfirmedConfig) -> frozenset[str]:
    """The conditional keys the config's search trial did not draw (shown as base values, as the leaderboard does)."""
    from vlp_sweep.sweep.results import inactive_keys

    board = sweep.board
    if board.empty or not c.search_trials or c.role != "top":
        return frozenset()
    rows = board[board["trial_id"] == c.search_trials[0]]
    return inactive_keys(rows.iloc[0], sweep.spec.get("search") or {}) if len(rows) else frozenset()


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _config(cid: Any, rows: pd.DataFrame, ranks: dict[str, stats.Ranks], metric: str, resamples: int, seed: int,
            varying: list[str]) -> ConfirmedConfig:
    runs = [ConfirmedRun(str(r["trial_id"]), int(r["seed"]), str(r["status"]),
                         None if pd.isna(r["selected_epoch"]) else int(r["selected_epoch"]),
                         finite_float(r.get(f"dev_{metric}")), finite_float(r.get(f"test_{metric}")),
                         str(r["error"]) if isinstance(r["error"], str) else "")
            for _, r in rows.sort_values("seed").iterrows()]
    have = [ranks[r.trial_id] for r in runs if r.status == "TERMINATED" and r.trial_id in ranks]
    test = seed_stats.seed_query_interval(have, metric, resamples, seed=seed) if have else None
    first = rows.iloc[0]
    cfg = json.loads(first["config_json"])
    return ConfirmedConfig(str(cid), str(first["role"]), json.loads(first["search_trials"] or "[]"),
                           finite_float(first["search_value"]), {k: cfg.get(k) for k in varying}, runs,
                           _mean([r.dev for r in runs if r.status == "TERMINATED"]), test)


def _comparisons(configs: list[ConfirmedConfig], ranks: dict[str, stats.Ranks], metric: str, resamples: int,
                 seed: int) -> list[ConfirmedComparison]:
    base = next((c for c in configs if c.role == "baseline"), None)
    if base is None:
        return []

    def finished(c: ConfirmedConfig) -> list[stats.Ranks]:
        return [ranks[r.trial_id] for r in c.runs if r.status == "TERMINATED" and r.trial_id in ranks]

    out = []
    for cfg in (c for c in configs if c.role == "top"):
        a, b = finished(cfg), finished(base)
        why = "no finished seed" if not a else "the baseline has no finished seed" if not b else ""
        if not why and len(a[0]) != len(b[0]):
            why = f"different test query sets ({len(a[0])} vs {len(b[0])})"
        res = None if why else seed_stats.paired_over_seeds(a, b, metric, resamples, seed=seed)
        out.append(ConfirmedComparison(cfg.config_id, res, None, why))
    tested = [c for c in out if c.result is not None]
    for cmp, p in zip(tested, seed_stats.holm([c.result.p for c in tested if c.result is not None])):
        cmp.p_holm = p
        cmp.verdict = _verdict(cmp, metric)
    return out


def _verdict(c: ConfirmedComparison, metric: str) -> str:
    r = c.result
    assert r is not None and c.p_holm is not None
    if c.p_holm < stats.ALPHA and r.diff != 0:
        better = r.diff > 0 if MODE.get(metric, "max") == "max" else r.diff < 0
        return "better" if better else "worse"
    return "not distinguishable"


def _pick_winner(out: Confirmed, mode: str) -> None:
    """The winner by dev mean over seeds (earlier search rank on a tie); the best by test mean, for the record."""
    top = [c for c in out.configs if c.role == "top" and c.dev_mean is not None]
    if not top:
        return
    sign = -1.0 if mode == "max" else 1.0
    out.winner = min(top, key=lambda c: sign * (c.dev_mean or 0.0)).config_id
    tested = [c for c in top if c.test is not None]
    out.test_best = min(tested, key=lambda c: sign * c.test.estimate).config_id if tested else None  # type: ignore[union-attr]
    cmp = next((c for c in out.comparisons if c.config_id == out.winner), None)
    out.holds = None if cmp is None or cmp.result is None else cmp.verdict == "better"


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}"


def headline(out: Confirmed) -> str:
    """One sentence: the winner and whether it holds against the baseline on the test split."""
    if out.winner is None:
        return f"No configuration finished its confirmation on the {out.split} split."
    w = next(c for c in out.configs if c.config_id == out.winner)
    seeds = sum(r.status == "TERMINATED" for r in w.runs)
    num = (f"{out.metric} {_fmt(w.test.estimate)} [{_fmt(w.test.low)}, {_fmt(w.test.high)}]" if w.test
           else f"{out.metric} -")
    where = f"on the {out.split} split ({seeds} seed{'s' if seeds != 1 else ''} x {out.n_queries} queries)"
    cmp = next((c for c in out.comparisons if c.config_id == out.winner), None)
    if cmp is None or cmp.result is None:
        why = cmp.verdict if cmp is not None else "no baseline config to test it against"
        return f"Chosen on dev: {w.config_id}, {num} {where}; {why}."
    r = cmp.result
    vs = (f"vs the baseline {r.diff:+.2f} [{r.low:+.2f}, {r.high:+.2f}], Holm {holm_text(cmp)}, "
          f"P(improvement) {r.p_improve:.2f}")
    if out.holds:
        return f"Confirmed winner: {w.config_id}, {num} {where}; better than the baseline ({vs})."
    return (f"No confirmed winner: {w.config_id} (chosen on dev) has {num} {where}; against the baseline it is "
            f"{cmp.verdict} ({vs}).")


def holm_text(c: ConfirmedComparison) -> str:
    """The Holm-adjusted p as text: "p < x" when the raw p is at the bootstrap's floor (then the adjusted
    value is an upper bound too), else "p = x"."""
    r = c.result
    if r is None or c.p_holm is None:
        return "p -"
    at_floor = stats.format_p(r.p, r.resamples).startswith("p <")
    return f"p < {c.p_holm * 1.0001:.2g}" if at_floor else f"p = {c.p_holm:.3g}"

"""The report's headline: the confirmation stage (confirm.parquet, its per-query ranks, confirm_queries.parquet).

Per configuration: the mean test metric over its seeds with a t interval over seeds and signers; each
searched configuration against the baseline config on the same test queries with the seed as the unit of
replication and the test split's signers as clusters (``replication.compare_seeds``), Holm-adjusted across
the comparisons; the same with these signers held fixed, as a second line; per-signer numbers of the winner
and the baseline. The winner is the configuration with the best *dev* mean over seeds (``sweep.ablate.
dev_order``: the test split plays no part in choosing it; what ``promote`` installs); it is named as
confirmed only when its comparison with the baseline holds. The sentences are ``headline.py``'s; the
ablations (``confirm.ablate``) are ``attribution.py``'s.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.report import stats
from vlp_sweep.report.types import Confirmed, ConfirmedComparison, ConfirmedConfig, ConfirmedRun
from vlp_sweep.report.values import metric_range
from vlp_sweep.report.verdicts import attribution, headline, replication
from vlp_sweep.report.verdicts.seed_compare import compare, holm_family
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.confirmation import ablate
from vlp_sweep.sweep.tables.results import Sweep

BASELINE_ID = "baseline"
Runs = dict[str, list[stats.Ranks]]  # config_id -> its finished seeds' test ranks


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
    ranks = test_ranks(sweep)
    stage = sweep.confirm[sweep.confirm["role"] != ablate.ROLE]
    runs = {str(cid): _finished(rows, ranks) for cid, rows in sweep.confirm.groupby("config_id", sort=False)}
    out.n_queries = next((len(r[0]) for r in runs.values() if r), None)
    signers = test_signers(sweep, out.n_queries)
    out.signers = len(set(signers)) if signers is not None else None
    varying = _varying(stage)
    out.configs = [_config(str(cid), rows, runs[str(cid)], metric, signers, varying)
                   for cid, rows in stage.groupby("config_id", sort=False)]
    for c in out.configs:
        c.inactive = _inactive(sweep, c)
    out.comparisons = _comparisons(out.configs, runs, metric, signers, "signers", resamples, seed)
    if out.signers and out.signers > 1:
        out.fixed = _comparisons(out.configs, runs, metric, signers, "queries", resamples, seed)
    _pick_winner(out, ablate.dev_order(sweep.confirm, metric, mode))
    if out.winner and signers is not None:
        out.per_signer = {cid: replication.per_signer(runs[cid], metric, signers)
                          for cid in (out.winner, BASELINE_ID) if runs.get(cid)}
    if conf.get("ablate"):
        out.attribution = attribution.analyse(sweep, out.winner, runs, metric, signers, resamples, seed)
    out.headline, out.lines = headline.sentences(out, runs, signers, resamples, seed)
    return out


def test_ranks(sweep: Sweep) -> dict[str, stats.Ranks]:
    """trial_id -> its selected checkpoint's test ranks: the one place the report reads the confirmation's
    per-query ranks (their source may change)."""
    table = sweep.confirm_ranks
    if table.empty:
        return {}
    test = table[table["split"] == "test"]
    out = {}
    for tid, g in test.groupby("trial_id"):
        by_dir = {d: np.asarray(r, dtype=np.int64) for d, r in zip(g["direction"], g["ranks"])}
        if "t2v" in by_dir:
            out[str(tid)] = stats.Ranks(by_dir["t2v"], by_dir.get("v2t"))
    return out


def test_signers(sweep: Sweep, n: int | None) -> np.ndarray | None:
    """The signer id of each held-out query (confirm_queries.parquet), or None when the split has none (or
    the table does not match the ranks' queries: then queries are the units)."""
    q = sweep.confirm_queries
    if n is None or q.empty or "signer" not in q:
        return None
    q = q.sort_values("query")
    if len(q) != n or q["signer"].isna().any():
        return None
    return q["signer"].astype(str).to_numpy()


def _finished(rows: pd.DataFrame, ranks: dict[str, stats.Ranks]) -> list[stats.Ranks]:
    done = rows[rows["status"] == "TERMINATED"].sort_values("seed")
    return [ranks[str(t)] for t in done["trial_id"] if str(t) in ranks]


def _varying(table: pd.DataFrame) -> list[str]:
    """Config keys whose values differ between the confirmed configurations."""
    configs = [json.loads(c) for c in table.drop_duplicates("config_id")["config_json"]]
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def _inactive(sweep: Sweep, c: ConfirmedConfig) -> frozenset[str]:
    """The conditional keys the config's search trial did not draw (shown as base values, as the leaderboard does)."""
    from vlp_sweep.sweep.tables.results import inactive_keys

    board = sweep.board
    if board.empty or not c.search_trials or c.role != "top":
        return frozenset()
    rows = board[board["trial_id"] == c.search_trials[0]]
    return inactive_keys(rows.iloc[0], sweep.spec.get("search") or {}) if len(rows) else frozenset()


def _mean(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _config(cid: str, rows: pd.DataFrame, have: list[stats.Ranks], metric: str, signers: np.ndarray | None,
            varying: list[str]) -> ConfirmedConfig:
    runs = [ConfirmedRun(str(r["trial_id"]), int(r["seed"]), str(r["status"]),
                         None if pd.isna(r["selected_epoch"]) else int(r["selected_epoch"]),
                         finite_float(r.get(f"dev_{metric}")), finite_float(r.get(f"test_{metric}")),
                         str(r["error"]) if isinstance(r["error"], str) else "")
            for _, r in rows.sort_values("seed").iterrows()]
    first = rows.iloc[0]
    cfg = json.loads(first["config_json"])
    return ConfirmedConfig(cid, str(first["role"]), json.loads(first["search_trials"] or "[]"),
                           finite_float(first["search_value"]), {k: cfg.get(k) for k in varying}, runs,
                           _mean([r.dev for r in runs if r.status == "TERMINATED"]), interval(have, metric, signers))


def interval(runs: list[stats.Ranks], metric: str, signers: np.ndarray | None) -> stats.Interval | None:
    """Mean over seeds with its t interval over seeds and signers, clipped to the metric's range (a t
    interval of two seeds can reach below 0 %, which no run could score); NaN bounds with one seed."""
    if not runs:
        return None
    iv = replication.mean_over_seeds(runs, metric, signers)
    lo, hi = metric_range(metric)
    low, high = (iv.low, iv.high) if math.isnan(iv.low) else (max(iv.low, lo), min(iv.high, hi))
    return stats.Interval(iv.estimate, low, high, iv.level, iv.n_queries, f"t over {iv.units()}")


def _comparisons(configs: list[ConfirmedConfig], runs: Runs, metric: str, signers: np.ndarray | None, over: str,
                 resamples: int, seed: int) -> list[ConfirmedComparison]:
    """Each searched configuration against the baseline config, Holm across them."""
    if not any(c.role == "baseline" for c in configs):
        return []
    return holm_family([compare(c.config_id, runs[c.config_id], runs[BASELINE_ID], metric, signers, over,
                                resamples, seed) for c in configs if c.role == "top"])


def _pick_winner(out: Confirmed, order: list[tuple[str, float]]) -> None:
    """The winner by dev mean over seeds (earlier search rank on a tie, which ``dev_ties`` records); the
    configurations with the best test mean, ties included, for the record."""
    if not order:
        return
    out.winner = order[0][0]
    out.dev_ties = [cid for cid, m in order if ablate.tied(m, order[0][1])]
    sign = -1.0 if headline.higher_is_better(out.metric) else 1.0
    tested = {c.config_id: sign * c.test.estimate for c in out.configs if c.role == "top" and c.test is not None}
    if tested:
        best = min(tested.values())
        out.test_best = [cid for cid, v in tested.items() if ablate.tied(v, best)]
    cmp = next((c for c in out.comparisons if c.config_id == out.winner), None)
    out.holds = None if cmp is None or cmp.result is None else cmp.verdict == replication.BETTER

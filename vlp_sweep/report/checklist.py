"""The plan's monitoring checklist over a sweep, read from the leaderboard's health columns: one row per
trial, the trials to look at first, and the training time per clip of each input set (SigLIP fusion vs
keypoints only) against the plan's expected 1.2-1.5x.

Inputs are told apart by what the batches carried (``fed_*_dim``), not by the config. The time ratio
compares trials that agree on every key that changes the cost of a step (``COST_KEYS``) and differ in
their inputs; without such pairs it falls back to the medians over all trials, and says so.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import pandas as pd

from vlp_sweep.report.types import InputCost, Monitoring, TrialHealth
from vlp_sweep.sweep.tables.results import Sweep
from vlp_sweep.train.watch.health_config import INPUTS, ITEMS, Check

LOOK_FIRST = 5
_SEVERITY = {"fail": 0, "warn": 1, "pass": 2, "n/a": 3, "-": 4}
# Keys that change how long a training step takes (not lr, dropout, seeds, augmentation strengths).
COST_KEYS = ("data.max_frames", "data.frame_sampling", "data.max_text_len", "data.limit_train",
             "model.d_model", "model.video_layers", "model.text_layers", "model.heads", "model.ff_mult",
             "model.embed_dim", "optim.batch_size", "optim.grad_accum", "optim.accum_mode", "loss.hard_negatives",
             "run.device", "run.precision", "run.compile", "run.attention", "run.num_threads")
FUSION, KPTS = "keypoints + SigLIP", "keypoints only"


def _val(r: pd.Series, col: str) -> Any:
    v = r.get(col)
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return v


def trial_health(r: pd.Series) -> TrialHealth:
    dims = {n: _val(r, f"fed_{n}_dim") for n in INPUTS}
    health = _val(r, "health") or "-"
    fed = " + ".join(f"{n} {int(d)}" for n, d in dims.items() if d)
    micro = _val(r, "micro_batch")
    return TrialHealth(
        trial_id=str(r["trial_id"]), status=str(r["status"]), health=health,
        items={i: _val(r, f"health_{i}") or "-" for i in ITEMS}, flags=_val(r, "health_flags") or "",
        inputs=fed or ("-" if all(d is None for d in dims.values()) else "none"),
        samples_per_s=_val(r, "samples_per_s"), gpu_util=_val(r, "gpu_util"), peak_mem_gb=_val(r, "peak_mem_gb"),
        micro_batch=None if micro is None else int(micro))


def _why(t: TrialHealth, error: str | None) -> str:
    bad = [i for i, s in t.items.items() if s in ("fail", "warn")]
    parts = [t.flags] if t.flags else ([f"{', '.join(bad)}: {t.health}"] if bad else [])
    if t.status == "ERROR":
        parts.append(f"error: {error or 'unknown'}")
    return "; ".join(parts)


def _kind(r: pd.Series) -> str | None:
    """Which inputs a trial was fed: from the batches (fed_*_dim), else from its config."""
    kpts, sig = _val(r, "fed_kpts_dim"), _val(r, "fed_siglip_dim")
    if kpts is None:
        kpts, sig = _val(r, "data_use_kpts"), _val(r, "data_use_siglip")
    if not kpts:
        return None
    return FUSION if sig else KPTS


def _cost_key(r: pd.Series) -> str:
    try:
        cfg = json.loads(r.get("config_json") or "{}")
    except json.JSONDecodeError:
        cfg = {}
    return json.dumps({k: cfg.get(k) for k in COST_KEYS}, sort_keys=True, default=str)


def input_costs(board: pd.DataFrame) -> tuple[list[InputCost], float | None, int, str]:
    """(time per 1000 clips per input set, fusion / keypoints-only ratio, pairs behind it, how measured)."""
    timed = [(k, _cost_key(r), 1000.0 / float(r["samples_per_s"])) for _, r in board.iterrows()
             if (k := _kind(r)) and (_val(r, "samples_per_s") or 0) > 0]
    costs = [InputCost(kind, len(xs), statistics.median(xs)) for kind in (FUSION, KPTS)
             if (xs := [s for k, _, s in timed if k == kind])]
    if len(costs) < 2:
        return costs, None, 0, "the sweep's trials were not fed both input sets: no fusion vs keypoints-only ratio"
    ratios = []
    for key in sorted({c for _, c, _ in timed}):
        fus = [s for k, c, s in timed if c == key and k == FUSION]
        kp = [s for k, c, s in timed if c == key and k == KPTS]
        if fus and kp:
            ratios.append(statistics.median(fus) / statistics.median(kp))
    if ratios:
        return costs, statistics.median(ratios), len(ratios), (
            f"median over {len(ratios)} pair(s) of trial groups that agree on every key that sets a step's cost "
            f"({', '.join(COST_KEYS)}) and differ in their inputs")
    return costs, costs[0].s_per_1k / costs[1].s_per_1k, 0, (
        "no two trials agree on the keys that set a step's cost, so this is the ratio of the two medians over "
        "trials that also differ in model size, frames or batch: a rough figure")


def ratio_verdict(m: Monitoring) -> str:
    if m.ratio is None:
        return m.note
    lo, hi = m.expected
    if m.pairs == 0:  # the two groups also differ in what sets a step's cost: no verdict on a confounded ratio
        return (f"fusion vs keypoints only: {m.ratio:.2f}x the time per clip, not judged against the plan's "
                f"{lo:g}-{hi:g}x (no cost-matched pair of trials)")
    where = "within" if lo <= m.ratio <= hi else ("below" if m.ratio < lo else "above")
    return f"fusion costs {m.ratio:.2f}x the time of keypoints only: {where} the plan's {lo:g}-{hi:g}x"


def analyse(sweep: Sweep) -> Monitoring:
    board = sweep.board
    checks = [Check(**c).describe() for c in ((sweep.spec.get("health") or {}).get("checks") or [])]
    if board.empty:
        return Monitoring(checks=checks, note="no trials yet")
    seen = board[board["status"] != "PENDING"]
    errors = {str(r["trial_id"]): _val(r, "error") for _, r in seen.iterrows()}
    rows = sorted((trial_health(r) for _, r in seen.iterrows()),
                  key=lambda t: (_SEVERITY.get(t.health, 4) if t.status != "ERROR" else -1, t.trial_id))
    look = [(t.trial_id, _why(t, errors.get(t.trial_id))) for t in rows
            if t.health in ("fail", "warn") or t.status == "ERROR"][:LOOK_FIRST]
    finished = seen[seen["status"].isin(("TERMINATED", "STOPPED", "RUNNING"))]
    costs, ratio, pairs, note = input_costs(finished)
    return Monitoring(rows=rows, look_first=look, checks=checks, costs=costs, ratio=ratio, pairs=pairs, note=note)

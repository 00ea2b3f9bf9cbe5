"""Promote's candidates from the confirmation stage (``confirm.parquet``): the confirmed winner first.

The winner is the configuration with the best dev mean over its seeds (the test split plays no part in
choosing it; the same choice the report's headline names). Of its runs, the one with the best dev value
at its selected epoch is installed (the selection rule over its dev numbers; then the lower seed). The
numbers recorded, and that the re-evaluation must reproduce, are its *test* numbers: ``vlp-sweep eval
--split <test split>`` on the promoted file gives them again. The other configurations' runs follow, in
the same order, so a winner whose checkpoints went missing falls back with one line (``candidates.pick``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.promote.candidates import Candidate
from vlp_sweep.report.select import Sweep
from vlp_sweep.selection import selection_key
from vlp_sweep.sweep.leaderboard import finite_float

STAGE = "confirmation"


def has_confirmation(sweep: Sweep) -> bool:
    """Whether the sweep's confirmation stage left a run to promote."""
    c = sweep.confirm
    return not c.empty and bool(((c["status"] == "TERMINATED") & (c["role"] == "top")).any())


def _run_key(row: pd.Series, metric: str, mode: str) -> tuple[float, float, float, int]:
    dev = {metric: row.get(f"dev_{metric}"), "rsum": row.get("dev_rsum")}
    return (*selection_key(dev, row.get("selected_epoch"), metric, mode), int(row["seed"]))


def ordered_runs(sweep: Sweep, metric: str, mode: str) -> list[pd.Series]:
    """Finished runs of the searched configurations: configurations by dev mean over seeds (then search
    rank), and within one, runs by the selection rule on their dev numbers."""
    c = sweep.confirm
    done = c[(c["status"] == "TERMINATED") & (c["role"] == "top") & c[f"dev_{metric}"].notna()]
    sign = -1.0 if mode == "max" else 1.0
    means = done.groupby("config_id")[f"dev_{metric}"].mean()
    ranks = done.groupby("config_id")["search_rank"].min()
    order = sorted(means.index, key=lambda cid: (sign * float(means[cid]), float(ranks[cid])))
    out: list[pd.Series] = []
    for cid in order:
        rows = [r for _, r in done[done["config_id"] == cid].iterrows()]
        out += sorted(rows, key=lambda r: _run_key(r, metric, mode))
    return out


def candidate(sweep: str, row: pd.Series) -> Candidate:
    path = row.get("checkpoint_path")
    return Candidate(
        sweep=sweep, trial_id=str(row["trial_id"]), status=str(row["status"]), epoch=int(row["selected_epoch"]),
        checkpoint=Path(path) if isinstance(path, str) and path else None,
        sha256=str(row["checkpoint_sha256"]) if isinstance(row.get("checkpoint_sha256"), str) else None,
        metrics={m: v for m in METRIC_NAMES if (v := finite_float(row.get(f"test_{m}"))) is not None},
        params={"config_id": str(row["config_id"]), "seed": int(row["seed"]),
                "dev_metrics": {m: v for m in METRIC_NAMES if (v := finite_float(row.get(f"dev_{m}"))) is not None}},
        split=str(row["test_split"]), stage=STAGE)


def from_confirmation(sweep: Sweep, trial: str | None, metric: str, mode: str) -> list[Candidate]:
    """The confirmation stage's runs as promote candidates, the confirmed winner's best run first."""
    if trial is not None:  # an explicit trial is a search trial: the caller uses the leaderboard
        raise UserError("--trial names a search trial; the confirmation's winner is chosen by its dev mean")
    runs = ordered_runs(sweep, metric, mode)
    if not runs:
        raise UserError(f"sweep {sweep.name}: no finished confirmation run with a dev {metric}")
    return [candidate(sweep.name, r) for r in runs]

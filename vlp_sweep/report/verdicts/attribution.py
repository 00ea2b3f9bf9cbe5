"""Which change earned the gain (``confirm.ablate``): each key where the confirmed winner differs from the
baseline config, reverted alone and trained with the same fresh seeds (``sweep/confirmation/ablate.py``).

A key's contribution is the winner minus its ablated configuration on the test split, with the same
seed-level interval and verdict as the headline (``replication.compare_seeds``, signers as clusters) and
Holm's correction across the keys. A positive contribution (in the metric's direction) means reverting the
key costs that much. Contributions need not add up to the gain over the baseline: keys interact. The two
sides share their seed numbers; the test takes them as independent, which is conservative where the runs
correlate. A key whose ablated runs give the winner's test ranks on every seed changed nothing at all (e.g.
``optim.accum_mode`` at ``optim.grad_accum: 1``): it is said so, and left out of the tests and of Holm's family.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from vlp_sweep.metric_names import MODE
from vlp_sweep.report import stats
from vlp_sweep.report.types import Ablation, Attribution, ConfirmedComparison
from vlp_sweep.report.verdicts import replication
from vlp_sweep.report.verdicts.seed_compare import compare, holm_family
from vlp_sweep.sweep.confirmation.ablate import ABLATIONS_FILE, ROLE
from vlp_sweep.sweep.tables.results import Sweep

IDENTICAL = "no change (identical runs)"


def analyse(sweep: Sweep, winner: str | None, runs: dict[str, list[stats.Ranks]], metric: str,
            signers: np.ndarray | None, resamples: int, seed: int) -> Attribution:
    """The winner's ablations, largest contribution first (or why there are none yet)."""
    rows = sweep.confirm[sweep.confirm["role"] == ROLE] if "role" in sweep.confirm else sweep.confirm
    saved = _saved(sweep.run_dir)
    out = Attribution(str(saved.get("winner") or winner or "-"), skipped=dict(saved.get("skipped") or {}))
    if rows.empty:
        out.note = ("the ablations have not run (the stage is unfinished or was interrupted; `vlp-sweep run "
                    "SPACE --resume` continues it)" if not out.skipped else "no key could be reverted alone")
        return out
    win_cfg = json.loads(sweep.confirm[sweep.confirm["config_id"] == out.winner]["config_json"].iloc[0])
    base = sweep.confirm[sweep.confirm["config_id"] == "baseline"]
    base_cfg = json.loads(base["config_json"].iloc[0]) if len(base) else {}
    items = []
    for cid, g in rows.groupby("config_id", sort=False):
        key = str(g["reverted_key"].iloc[0])
        mine, theirs = runs.get(out.winner, []), runs.get(str(cid), [])
        if _identical(mine, theirs):  # nothing to test: the key changed no rank of any seed
            cmp = ConfirmedComparison(str(cid), None, None, IDENTICAL)
        else:
            cmp = compare(str(cid), mine, theirs, metric, signers, resamples=resamples, seed=seed,
                          b_name="the ablation")
        items.append(Ablation(key, str(cid), win_cfg.get(key), base_cfg.get(key), cmp, cmp.verdict == IDENTICAL))
    holm_family([a.comparison for a in items])
    sign = 1.0 if MODE.get(metric, "max") == "max" else -1.0
    out.rows = sorted(items, key=lambda a: (-sign * a.comparison.result.diff if a.comparison.result
                                            else 0.0 if a.identical else np.inf))
    out.unchanged = [a.key for a in out.rows if a.comparison.verdict == replication.NOT_DISTINGUISHABLE]
    out.identical = [a.key for a in out.rows if a.identical]
    return out


def _saved(run_dir: Path) -> dict[str, Any]:
    path = run_dir / ABLATIONS_FILE
    try:
        return dict(json.loads(path.read_text())) if path.is_file() else {}
    except (OSError, ValueError):  # a damaged file: the table's own rows still tell the keys
        return {}


def _identical(a: list[stats.Ranks], b: list[stats.Ranks]) -> bool:
    """The same test ranks on every seed (both sides list their finished seeds in seed order)."""
    return bool(a) and len(a) == len(b) and all(
        np.array_equal(x.t2v, y.t2v) and (x.v2t is None or y.v2t is None or np.array_equal(x.v2t, y.v2t))
        for x, y in zip(a, b))

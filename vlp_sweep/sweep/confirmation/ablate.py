"""Which change earned the gain (``confirm.ablate``): the confirmed winner with one key at a time reverted to
the baseline config's value, each trained with the stage's fresh seeds, so that the report can credit the
gain over the baseline key by key (the winner minus each ablated configuration).

    runs/<name>/confirm_ablations.json  the ablations chosen (written once, after the stage's first part;
                                        a resume reuses them)

The winner is the one rule the report and ``promote`` use too (``dev_order``): the searched configurations
of the stage by their mean dev metric over finished seeds, in the sweep's mode, then the earlier search rank;
the test split plays no part in it. An ablation reverts a key that differs between the winner's resolved
config and the baseline's, searched or not (a key the baseline's config lacks, such as an option of another
model factory, is dropped, so its default applies).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.atomic import write_text
from vlp_sweep.config import make_config
from vlp_sweep.errors import UserError

ABLATIONS_FILE = "confirm_ablations.json"
EXPERIMENT = "confirm_ablate"  # the ablations' Tune experiment, beside the stage's own
ROLE = "ablation"


def dev_order(rows: pd.DataFrame, metric: str, mode: str) -> list[tuple[str, float]]:
    """(config_id, mean dev metric over finished seeds) of the stage's searched configurations, best first
    (then the earlier search rank): the first is the winner."""
    col = f"dev_{metric}"
    if rows.empty or col not in rows:
        return []
    done = rows[(rows["status"] == "TERMINATED") & (rows["role"] == "top") & rows[col].notna()]
    means = done.groupby("config_id")[col].mean()
    ranks = done.groupby("config_id")["search_rank"].min()
    sign = -1.0 if mode == "max" else 1.0
    order = sorted(means.index, key=lambda cid: (sign * float(means[cid]), float(ranks[cid])))
    return [(str(cid), float(means[cid])) for cid in order]


def tied(a: float, b: float) -> bool:
    """Two means over seeds that are equal up to the rounding of their sums."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def differing_keys(winner: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Keys whose values differ between two flat resolved configs (either may lack a key), sorted."""
    def shown(config: dict[str, Any], key: str) -> str | None:
        return json.dumps(config[key], default=str) if key in config else None

    return sorted(k for k in set(winner) | set(baseline) if shown(winner, k) != shown(baseline, k))


def reverted(winner: dict[str, Any], baseline: dict[str, Any], key: str) -> dict[str, Any]:
    """The winner's config with ``key`` at the baseline's value (dropped where the baseline has none)."""
    out = {k: v for k, v in winner.items() if k != key}
    if key in baseline:
        out[key] = baseline[key]
    return out


def ablation_candidates(cands: dict[str, dict[str, Any]], winner: str) -> tuple[dict[str, dict[str, Any]],
                                                                                 dict[str, str]]:
    """(``a1``, ``a2``, ... -> one candidate per key in which the winner differs from the baseline config;
    key -> why it is not run, for a key the trainer refuses to revert alone, e.g. ``model.heads`` that no
    longer divides the winner's ``model.d_model``)."""
    win, base = cands[winner]["config"], cands["baseline"]["config"]
    out: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for key in differing_keys(win, base):
        config = reverted(win, base, key)
        try:
            make_config(config)
        except UserError as e:
            skipped[key] = str(e)
            continue
        out[f"a{len(out) + 1}"] = {"role": ROLE, "search_rank": None, "search_trials": [], "search_value": None,
                                   "ablates": winner, "reverted_key": key, "config": config}
    return out, skipped


def load_or_choose(run_dir: Path, cands: dict[str, dict[str, Any]], rows: pd.DataFrame, metric: str, mode: str,
                   say: Callable[[str], Any] = print) -> dict[str, dict[str, Any]]:
    """The ablations of an earlier start (resume), else chosen now from the stage's table and saved; {} when
    there is no winner or no baseline config."""
    path = run_dir / ABLATIONS_FILE
    if path.is_file():
        return dict(json.loads(path.read_text())["ablations"])
    order = dev_order(rows, metric, mode)
    if not order or "baseline" not in cands:
        say("ablations not started: " + ("no searched configuration finished its confirmation" if not order
                                          else "the stage has no baseline config"))
        return {}
    more, skipped = ablation_candidates(cands, order[0][0])
    for key, why in skipped.items():
        say(f"ablation of {key} not run: the trainer refuses the winner with only {key} reverted ({why})")
    write_text(path, json.dumps({"winner": order[0][0], "ablations": more, "skipped": skipped}, indent=1,
                                default=str))
    return more

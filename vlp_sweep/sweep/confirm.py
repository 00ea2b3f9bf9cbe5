"""The confirmation stage: after the search, the top-K configurations (and the baseline config) trained
again with fresh seeds, for their full budget, no early stopping, as a second Ray Tune experiment of the
sweep (``<storage>/<name>/confirm``, resumed like the search).

    runs/<name>/confirm_candidates.json  the configurations chosen (written once; a resume reuses it)
    runs/<name>/confirm.parquet          one row per configuration x seed (confirm_table.py)
    runs/<name>/confirm_ranks.parquet    per-query ranks of each trial's selected checkpoint, dev and test

The top-K are the finished searched configurations ranked by the mean over their seeds of the
leaderboard's ``best_<metric>`` (the search's selection numbers), then ``rsum``, then the first trial id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.atomic import write_text
from vlp_sweep.sweep.leaderboard import read_table

CANDIDATES_FILE = "confirm_candidates.json"
EXPERIMENT = "confirm"  # the stage's Tune experiment, under the search's experiment folder
BASELINE_ID = "baseline"
_RUN_KEYS = ("run.seed", "run.out_dir", "run.num_threads", "run.select_metric")  # set per confirmation trial


def _is_baseline(row: pd.Series) -> bool:
    from vlp_sweep.sweep.trial import BASELINE_KEY

    try:
        return bool(json.loads(row.get("params") or "{}").get(BASELINE_KEY))
    except (TypeError, ValueError):
        return False


def rank_groups(board: pd.DataFrame, metric: str, mode: str) -> list[dict[str, Any]]:
    """Finished searched configurations (trials grouped over seeds), best first: the mean of ``best_<metric>``
    in ``mode``, then the mean ``best_rsum``, then the first trial id."""
    done = board[board["status"].isin(("TERMINATED", "STOPPED")) & board[f"best_{metric}"].notna()]
    done = done[[not _is_baseline(r) for _, r in done.iterrows()]]
    groups = []
    for gid, g in done.groupby("group_id", sort=False):
        g = g.sort_values("trial_id")
        groups.append({"group_id": str(gid), "trials": [str(t) for t in g["trial_id"]],
                       "search_value": float(g[f"best_{metric}"].mean()),
                       "rsum": float(g["best_rsum"].mean()) if g["best_rsum"].notna().any() else float("-inf"),
                       "config": json.loads(g.iloc[0]["config_json"])})
    sign = -1.0 if mode == "max" else 1.0
    return sorted(groups, key=lambda c: (sign * c["search_value"], -c["rsum"], c["trials"][0]))


def _config(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if k not in _RUN_KEYS}


def choose_candidates(spec: Any, run_dir: Path, ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config_id -> candidate (``c1``.. by search rank, and ``baseline``): the resolved trainer config, the
    search trials it comes from and its search value. Fewer than top when fewer configurations finished."""
    from vlp_sweep.sweep.trial import BASELINE_KEY, resolve_trial_config

    board = read_table(run_dir / "leaderboard.parquet")
    ranked = rank_groups(board, spec.metric, spec.mode)[:spec.confirm.top]
    out: dict[str, dict[str, Any]] = {}
    for i, g in enumerate(ranked, 1):
        out[f"c{i}"] = {"role": "top", "search_rank": i, "search_trials": g["trials"], "group_id": g["group_id"],
                        "search_value": g["search_value"], "config": _config(g["config"])}
    if spec.confirms_baseline:
        flat = resolve_trial_config(spec, {BASELINE_KEY: True}, ctx).flat()
        base = board[[_is_baseline(r) for _, r in board.iterrows()]] if not board.empty else board
        out[BASELINE_ID] = {"role": "baseline", "search_rank": None,
                            "search_trials": [str(t) for t in base["trial_id"]], "group_id": None,
                            "search_value": float(base[f"best_{spec.metric}"].mean()) if len(base) else None,
                            "config": _config(flat)}
    return out


def search_finished(run_dir: Path, expected: int) -> str | None:
    """None when every trial of the search has ended; else why the stage cannot start yet."""
    path = run_dir / "leaderboard.parquet"
    if not path.is_file():
        return "the search wrote no leaderboard"
    board = read_table(path)
    open_ = int(board["status"].isin(("PENDING", "RUNNING")).sum())
    if open_ or len(board) < expected:
        return f"the search has not finished ({len(board) - open_} of {expected} trials ended)"
    return None


def load_or_choose(spec: Any, run_dir: Path, ctx: dict[str, Any],
                   say: Any = print) -> dict[str, dict[str, Any]]:
    """The candidates of an earlier start of the stage (resume), else chosen now and saved. A resume whose
    search results changed since (a trial Ray had not yet recorded as ended ran again) keeps the saved
    choice, so the stage's trials stay one experiment, and says so in one line."""
    path = run_dir / CANDIDATES_FILE
    cands = choose_candidates(spec, run_dir, ctx)
    if path.is_file():
        saved = dict(json.loads(path.read_text())["candidates"])
        if [c["search_trials"] for c in saved.values()] != [c["search_trials"] for c in cands.values()]:
            say(f"warning: the search's ranking changed since the confirmation chose its configurations; keeping "
                f"the saved choice (delete {path} and {run_dir / EXPERIMENT} to choose again)")
        return saved
    write_text(path, json.dumps({"metric": spec.metric, "mode": spec.mode, "confirm": spec.confirm.to_dict(),
                                 "candidates": cands}, indent=1, default=str))
    return cands


def run_confirmation(spec: Any, name: str, run_dir: Path, storage: str, ctx: dict[str, Any],
                     stopped: Callable[[], bool] = lambda: False) -> Path | None:
    """Run (or resume) the stage after the search; writes confirm.parquet and returns its path, or None
    when there is no stage, or the search did not finish, or a stop signal came (Ctrl-C, SIGTERM: the
    stage's Tune loop stops cleanly and ``--resume`` continues it)."""
    from vlp_sweep.output import say  # the terminal, also while the driver's output goes to driver.log

    if spec.confirm is None or stopped():
        return None
    why = search_finished(run_dir, spec.budget()["trials"])
    if why:
        say(f"confirmation stage not started: {why}")
        return None
    cands = load_or_choose(spec, run_dir, ctx, say)
    if not any(c["role"] == "top" for c in cands.values()):
        say("confirmation stage not started: no searched configuration finished")
        return None
    say(f"confirmation stage: {', '.join(cands)} x seeds {list(spec.confirm.seeds)}, "
        f"full budget, then the {spec.confirm.split} split")
    from vlp_sweep.sweep.confirm_tuner import fit_confirmation

    results = fit_confirmation(spec, name, cands, storage, ctx)
    if stopped():  # unfinished trials are not failures: the table waits for --resume
        return None
    from vlp_sweep.sweep.confirm_table import write_confirm

    return write_confirm(run_dir, name, spec, cands, results)

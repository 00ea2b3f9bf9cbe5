"""The confirmation stage: after the search, the top-K configurations (and the baseline config) trained
again with fresh seeds, for their full budget, no early stopping, as a second Ray Tune experiment of the
sweep (``<storage>/<name>/confirm``, resumed like the search).

    runs/<name>/confirm_candidates.json  the configurations chosen (written once; a resume reuses it)
    runs/<name>/confirm.parquet          one row per configuration x seed (schema: CONFIRM_SCHEMA)
    runs/<name>/confirm_ranks.parquet    per-query ranks of each trial's selected checkpoint: ``split`` is
                                         ``dev`` (the eval split, which selected the epoch) or ``test``; each
                                         trial writes its own into its folder (ranks/selected.parquet), and the
                                         table is made from those files when the stage ends
    runs/<name>/confirm_queries.parquet  the held-out split's queries and their signers (query_signers.py)
    runs/<name>/confirm_ablations.json   with ``confirm.ablate``: the winner's keys reverted (ablate.py), run
                                         as a second experiment (``<storage>/<name>/confirm_ablate``)

The stage top to bottom: choose the candidates, run them (every (config_id, seed) pair once, as a grid,
no scheduler), each trial in a Ray worker (``confirm_main``, ``confirm_trial.py``), then write the tables;
with ``ablate``, run the winner's ablations the same way and write the tables again with their rows (role
``ablation``). A run that fails is a row with its error; the driver then records the stage as failed
(``StageResult``).

- The top-K are the finished searched configurations ranked by the mean over their seeds of the
  leaderboard's ``best_<metric>`` (the search's selection numbers), then ``rsum``, then the first trial id.
- A trial reports the dev metrics after each evaluation on the eval split, with a checkpoint that holds
  the last state (to resume from) and the checkpoint of the epoch selected so far (``selection.py``'s rule
  over the dev history). After the last epoch, the selected checkpoint is evaluated once on the eval split
  (its dev ranks) and once on the held-out split; the final report carries both.
- ``dev_*`` in confirm.parquet are the metrics of the selected checkpoint re-evaluated on the eval split
  (they equal the trial's report at that epoch), ``test_*`` the same checkpoint on the held-out split.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from vlp_sweep.atomic import write_text
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.selection import finite_float
from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.sweep.confirmation import ablate
from vlp_sweep.sweep.confirmation.confirm_trial import CONFIRM_RANKS_SCHEMA, SELECTED_RANKS, SPLITS, confirm_main
from vlp_sweep.sweep.confirmation.query_signers import write_queries
from vlp_sweep.sweep.tables.leaderboard import read_table, write_table_atomic
from vlp_sweep.sweep.tables.ranks import RANKS_DIR, read_rows
from vlp_sweep.sweep.tables.results import FINISHED, is_baseline_trial
from vlp_sweep.sweep.trial import BASELINE_KEY, TrialContext, resolve_trial_config

CANDIDATES_FILE = "confirm_candidates.json"
CONFIRM_FILE = "confirm.parquet"
CONFIRM_RANKS_FILE = "confirm_ranks.parquet"
EXPERIMENT = "confirm"  # the stage's Tune experiment, under the search's experiment folder
BASELINE_ID = "baseline"
_RUN_KEYS = ("run.seed", "run.out_dir", "run.num_threads", "run.select_metric")  # set per confirmation trial
CONFIRM_SCHEMA = pa.schema(
    [("sweep", pa.string()), ("trial_id", pa.string()), ("config_id", pa.string()), ("role", pa.string()),
     ("search_rank", pa.int64()), ("search_trials", pa.string()), ("search_value", pa.float64()),
     ("seed", pa.int64()), ("status", pa.string()), ("error", pa.string()), ("selected_epoch", pa.int64()),
     ("epochs", pa.int64()), ("eval_split", pa.string()), ("test_split", pa.string()), ("test_n", pa.int64())]
    + [(f"{s}_{m}", pa.float64()) for s in SPLITS for m in METRIC_NAMES]
    + [("checkpoint_path", pa.string()), ("checkpoint_sha256", pa.string()), ("config_json", pa.string()),
       ("updated_at", pa.timestamp("s", tz="UTC")),
       # an ablation (role "ablation", confirm.ablate): the configuration it reverts a key of, and the key
       ("ablates", pa.string()), ("reverted_key", pa.string())])


# ---------------------------------------------------------------- choosing the candidates


def rank_groups(board: pd.DataFrame, metric: str, mode: str) -> list[dict[str, Any]]:
    """Finished searched configurations (trials grouped over seeds), best first: the mean of ``best_<metric>``
    in ``mode``, then the mean ``best_rsum``, then the first trial id."""
    done = board[board["status"].isin(FINISHED) & board[f"best_{metric}"].notna()]
    done = done[[not is_baseline_trial(r) for _, r in done.iterrows()]] if len(done) else done
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


def choose_candidates(spec: SweepSpec, run_dir: Path, cwd: str) -> dict[str, dict[str, Any]]:
    """config_id -> candidate (``c1``.. by search rank, and ``baseline``): the resolved trainer config, the
    search trials it comes from and its search value. Fewer than top when fewer configurations finished.
    ``cwd``: the driver's folder, from which the baseline's relative data path is resolved."""
    assert spec.confirm is not None
    board = read_table(run_dir / "leaderboard.parquet")
    ranked = rank_groups(board, spec.metric, spec.mode)[:spec.confirm.top]
    out: dict[str, dict[str, Any]] = {}
    for i, g in enumerate(ranked, 1):
        out[f"c{i}"] = {"role": "top", "search_rank": i, "search_trials": g["trials"], "group_id": g["group_id"],
                        "search_value": g["search_value"], "config": _config(g["config"])}
    if spec.confirms_baseline:
        flat = resolve_trial_config(spec, {BASELINE_KEY: True}, cwd).flat()
        base = board[[is_baseline_trial(r) for _, r in board.iterrows()]] if not board.empty else board
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


def load_or_choose(spec: SweepSpec, run_dir: Path, cwd: str,
                   say: Callable[[str], Any] = print) -> dict[str, dict[str, Any]]:
    """The candidates of an earlier start of the stage (resume), else chosen now and saved. A resume whose
    search results changed since (a trial Ray had not yet recorded as ended ran again) keeps the saved
    choice, so the stage's trials stay one experiment, and says so in one line."""
    path = run_dir / CANDIDATES_FILE
    cands = choose_candidates(spec, run_dir, cwd)
    if path.is_file():
        saved = dict(json.loads(path.read_text())["candidates"])
        if [c["search_trials"] for c in saved.values()] != [c["search_trials"] for c in cands.values()]:
            say(f"warning: the search's ranking changed since the confirmation chose its configurations; keeping "
                f"the saved choice (delete {path} and {run_dir / EXPERIMENT} to choose again)")
        return saved
    assert spec.confirm is not None
    write_text(path, json.dumps({"metric": spec.metric, "mode": spec.mode, "confirm": spec.confirm.to_dict(),
                                 "candidates": cands}, indent=1, default=str))
    return cands


@dataclass(frozen=True)
class StageResult:
    """What the stage left: its table, and one line per configuration with failed runs (none: all ran)."""

    path: Path
    failures: tuple[str, ...] = ()


def run_confirmation(ctx: TrialContext, name: str, run_dir: Path, storage: str,
                     stopped: Callable[[], bool] = lambda: False) -> StageResult | None:
    """Run (or resume) the stage after the search, then its ablations (``confirm.ablate``); writes
    confirm.parquet and returns it with the failed runs, or None when there is no stage, or the search did
    not finish, or a stop signal came (Ctrl-C, SIGTERM: the stage's Tune loop stops cleanly and ``--resume``
    continues it)."""
    from vlp_sweep.output import say  # the terminal, also while the driver's output goes to driver.log

    spec = ctx.spec
    if spec.confirm is None or stopped():
        return None
    why = search_finished(run_dir, spec.budget()["trials"])
    if why:
        say(f"confirmation stage not started: {why}")
        return None
    cands = load_or_choose(spec, run_dir, ctx.cwd, say)
    if not any(c["role"] == "top" for c in cands.values()):
        say("confirmation stage not started: no searched configuration finished")
        return None
    say(f"confirmation stage: {', '.join(cands)} x seeds {list(spec.confirm.seeds)}, "
        f"full budget, then the {spec.confirm.split} split")
    results = fit_confirmation(ctx, name, cands, storage)
    if stopped():  # unfinished trials are not failures: the table waits for --resume
        return None
    path = write_confirm(run_dir, name, spec, cands, results)
    write_queries(run_dir, str(next(iter(cands.values()))["config"]["data.path"]), spec.confirm.split)
    if spec.confirm.ablate:
        more = ablate.load_or_choose(run_dir, cands, read_table(path), spec.metric, spec.mode, say)
        if more:
            say(f"ablations: {len(more)} keys of the winner reverted to the baseline's one at a time "
                f"({', '.join(c['reverted_key'] for c in more.values())}) x seeds {list(spec.confirm.seeds)}")
            results += fit_confirmation(ctx, name, more, storage, ablate.EXPERIMENT)
            if stopped():
                return None
            path = write_confirm(run_dir, name, spec, {**cands, **more}, results)
    return StageResult(path, failure_lines(results))


def failure_lines(outcomes: list[dict[str, Any]]) -> tuple[str, ...]:
    """One line per configuration with failed runs: its seeds and the first error."""
    failed: dict[str, list[dict[str, Any]]] = {}
    for o in outcomes:
        if o["error"]:
            failed.setdefault(o["config_id"], []).append(o)
    return tuple(f"confirmation of {cid} failed for seed{'s' * (len(runs) > 1)} "
                 f"{', '.join(str(r['seed']) for r in sorted(runs, key=lambda r: r['seed']))}: {runs[0]['error']}"
                 for cid, runs in failed.items())


# ---------------------------------------------------------------- the stage's Tune experiment


def fit_confirmation(ctx: TrialContext, name: str, cands: dict[str, dict[str, Any]], storage: str,
                     experiment: str = EXPERIMENT) -> list[dict[str, Any]]:
    """Run the stage's trials (those not finished before; a failed one again) and return one outcome per
    trial. ``experiment``: the Tune experiment's folder name (the ablations have their own)."""
    from ray import tune

    from vlp_sweep.sweep.callbacks import CheckpointRepair, ProgressCallback

    spec = ctx.spec
    assert spec.confirm is not None
    root = f"{storage.rstrip('/')}/{name}"
    path = f"{root}/{experiment}"
    ctx = dataclasses.replace(ctx, experiment_path=path, name=name)  # the stage's trials write their ranks there
    trainable = tune.with_resources(tune.with_parameters(confirm_main, ctx=ctx, candidates=cands),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    if tune.Tuner.can_restore(path):
        # resume_errored: a run that failed (a model's code that could not be imported, since fixed) runs again
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    else:
        space = {"config_id": tune.grid_search(list(cands)), "seed": tune.grid_search(list(spec.confirm.seeds))}
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(max_concurrent_trials=spec.max_concurrent, reuse_actors=True),
            run_config=tune.RunConfig(
                name=experiment, storage_path=root, verbose=0,
                callbacks=[CheckpointRepair(),
                           ProgressCallback(spec.metric, spec.mode, len(cands) * len(spec.confirm.seeds))],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # the latest: the selected epoch's, at the end
                failure_config=tune.FailureConfig(max_failures=spec.retries)))
    grid = tuner.fit()
    return [_outcome(grid[i], ctx) for i in range(len(grid))]


def _outcome(result: Any, ctx: TrialContext) -> dict[str, Any]:
    """What a finished (or failed) trial left: its params, final report, checkpoint file and error."""
    metrics = dict(result.metrics or {})
    ckpt = result.checkpoint
    path = str(Path(ckpt.path) / "full.pt") if ckpt is not None and metrics.get("stage") == "final" else None
    error = None
    if result.error is not None:
        lines = [ln for ln in str(result.error).strip().splitlines() if ln.strip()]
        error = (lines[-1] if lines else type(result.error).__name__)[:500]
    elif metrics.get("stage") != "final":
        error = "the trial ended without its final evaluation"
    return {"trial_id": str(metrics.get("trial_id") or Path(result.path).name), "config_id": result.config["config_id"],
            "seed": int(result.config["seed"]), "metrics": metrics, "checkpoint_path": path, "error": error,
            "trial_dir": ctx.trial_dir(result.path)}


# ---------------------------------------------------------------- the tables


def confirm_row(sweep: str, spec: SweepSpec, cand: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """One trial's row: the candidate it ran, its seed, and the selected checkpoint's dev and test metrics."""
    assert spec.confirm is not None
    m = out["metrics"]
    row: dict[str, Any] = {
        "sweep": sweep, "trial_id": out["trial_id"], "config_id": out["config_id"], "role": cand["role"],
        "search_rank": cand.get("search_rank"), "search_trials": json.dumps(cand.get("search_trials") or []),
        "search_value": finite_float(cand.get("search_value")), "seed": out["seed"],
        "status": "ERROR" if out["error"] else "TERMINATED", "error": out["error"],
        "selected_epoch": m.get("selected_epoch") if not out["error"] else None,
        "epochs": m.get("epoch"), "eval_split": cand["config"].get("data.eval_split"),
        "test_split": spec.confirm.split, "checkpoint_path": out["checkpoint_path"],
        "checkpoint_sha256": m.get("checkpoint_sha256") if out["checkpoint_path"] else None,
        "config_json": json.dumps(cand["config"], sort_keys=True, default=str),
        "updated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        "ablates": cand.get("ablates"), "reverted_key": cand.get("reverted_key")}
    for s in SPLITS:
        found = {} if out["error"] else (m.get(s) or {}).get("metrics") or {}
        row |= {f"{s}_{k}": finite_float(found.get(k)) for k in METRIC_NAMES}
    row["test_n"] = (m.get("test") or {}).get("n") if not out["error"] else None
    return row


def rank_rows(sweep: str, out: dict[str, Any]) -> list[dict[str, Any]]:
    """The trial's selected-checkpoint ranks, from its folder (or, from a stage an earlier version ran, from
    its final result)."""
    if out["error"]:
        return []
    saved = read_rows(f"{out['trial_dir']}/{RANKS_DIR}/{SELECTED_RANKS}") if out.get("trial_dir") else None
    if saved is not None:
        return [{**r, "sweep": sweep} for r in saved.to_pylist()]
    rows = []
    for s in SPLITS:
        part = out["metrics"].get(s) or {}
        for d in ("t2v", "v2t"):
            if f"{d}_ranks" in part:
                rows.append({"sweep": sweep, "trial_id": out["trial_id"], "config_id": out["config_id"],
                             "seed": out["seed"], "split": s, "direction": d,
                             "ranks": [int(r) for r in part[f"{d}_ranks"]]})
    return rows


def write_confirm(run_dir: Path, sweep: str, spec: SweepSpec, cands: dict[str, dict[str, Any]],
                  outcomes: list[dict[str, Any]]) -> Path:
    """Write both tables (whole, atomically); rows in candidate order, then seed."""
    order = {c: i for i, c in enumerate(cands)}
    outcomes = sorted(outcomes, key=lambda o: (order.get(o["config_id"], len(order)), o["seed"]))
    rows = [confirm_row(sweep, spec, cands[o["config_id"]], o) for o in outcomes]
    ranks = [r for o in outcomes for r in rank_rows(sweep, o)]
    write_table_atomic(rows, CONFIRM_SCHEMA, run_dir / CONFIRM_FILE)
    write_table_atomic(ranks, CONFIRM_RANKS_SCHEMA, run_dir / CONFIRM_RANKS_FILE)
    return run_dir / CONFIRM_FILE

"""Build a report: run each analysis on a sweep's Parquet tables and sweep.json (no rendering here).

Which trials count where:
- the leaderboard table ranks every trial that has reported an evaluation (running ones too, marked);
- the best trial, the runner-up, the targets and the equal-budget analyses (effects, importance, the
  expected best of n trials) use finished trials only (TERMINATED or STOPPED), so a snapshot of a
  running sweep never crowns a half-trained trial; the equal-budget analyses also leave the baseline
  trial out (it differs in keys the search does not vary);
- confidence intervals and comparisons use the per-query ranks of each trial's ``best_epoch`` (the
  epoch whose metrics the leaderboard row holds); the equal-budget analyses use each trial's metric
  at the budget's epoch (the history).

One more analysis plugs in as a module that returns its data class (``types.py``), one field of
:class:`Report` filled here, and one section in ``render/document.py``.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from vlp_sweep.errors import UserError
from vlp_sweep.report import baseline as base
from vlp_sweep.report import budgets, checklist, expected_max, stats, trials
from vlp_sweep.report.datasource import data_source
from vlp_sweep.report.effects import effects
from vlp_sweep.report.importance import param_importance
from vlp_sweep.report.types import DataSource, Report
from vlp_sweep.report.verdicts import confirmed
from vlp_sweep.sweep.tables.results import (
    Sweep,
    missing_checkpoints,
    missing_confirmed,
    rank_trials,
    resolve_metric,
    searched_only,
)

CURVES = 8  # learning curves drawn (the top trials)


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
    varying = trials.varying_keys(sweep.board, search)
    ranked = rank_trials(sweep.with_results(), metric, mode)
    table = [trials.trial_line(r, varying, search) for _, r in ranked.head(top).iterrows()]
    index = trials.rank_index(sweep)
    cis, epochs = trials.intervals(table, index, metric, resamples, seed)
    best = trials.trial_line(finished.iloc[0], varying, search)
    data = data_source(sweep)
    baseline, base_row = base.find_baseline(sweep, metric, mode, data)
    slices = budgets.slices(sweep.spec, sweep.board, searched_only(finished), sweep.history, metric)
    plotted = ranked.head(CURVES)
    loss = trials.curve_loss(sweep.history, plotted)
    return Report(
        sweep=sweep.name, run_dir=str(sweep.run_dir), sweep_status=str(sweep.meta.get("status", "unknown")),
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), metric=metric, mode=mode,
        counts={str(k): int(v) for k, v in sweep.board["status"].value_counts().items()},
        varying=varying, table=table, best=best, intervals=cis, interval_epochs=epochs,
        comparisons=base.comparisons(finished, base_row, baseline, index, metric, resamples, seed, sweep.history),
        data=data, baseline=baseline,
        targets=base.targets(sweep.spec, best, baseline, index, metric, data, resamples, seed),
        budgets=[s.budget for s in slices], effects=effects(slices, search, metric),
        importance=[param_importance(s.points, search, mode, s.budget) for s in slices if s.points],
        expected_best=expected_max.analyse(slices, metric, mode, str((sweep.spec.get("search_alg") or {}).get("type"))),
        errors=trials.errors(sweep.board),
        curves=trials.curves(sweep.history, [str(t) for t in plotted["trial_id"]], metric, loss[0]),
        curve_loss=loss, sources=_sources(sweep), notes=_notes(sweep, ranked, finished, data),
        confirmed=confirmed.analyse(sweep, metric, mode, resamples, seed), resamples=resamples,
        monitoring=checklist.analyse(sweep), model=model_line(sweep.spec))


def model_line(spec: dict[str, Any]) -> str:
    """The model the sweep trained: its factory, fixed options and searched options (a factory of your own
    reads none of the built-in model's keys, whose leaderboard columns are then empty)."""
    from vlp_sweep.model_factory import BUILTIN_FACTORY

    base = spec.get("base") or {}
    factory = str(base.get("model.factory") or BUILTIN_FACTORY)
    if factory == BUILTIN_FACTORY:
        return f"Model: the built-in Transformer towers ({BUILTIN_FACTORY})."
    fixed = ", ".join(f"{k.split('.', 2)[2]}={v}" for k, v in sorted(base.items()) if k.startswith("model.options."))
    searched = ", ".join(k.split(".", 2)[2] for k in sorted(spec.get("search") or {}) if k.startswith("model.options."))
    return (f"Model: {factory} (a factory of your own); options {fixed or 'none fixed'}"
            f"{f'; searched: {searched}' if searched else ''}; the built-in model's keys (model.d_model, "
            "model.heads, ...) do not apply to it.")


def _nothing_finished(sweep: Sweep) -> str:
    counts = sweep.board["status"].value_counts().to_dict() if not sweep.board.empty else {}
    summary = ", ".join(f"{v} {str(k).lower()}" for k, v in sorted(counts.items(), key=str)) or "no trials"
    msg = f"no finished trial in {sweep.run_dir} ({summary}): nothing to report yet"
    errors = sweep.board[sweep.board["status"] == "ERROR"] if counts else sweep.board
    if len(errors):
        r = errors.iloc[0]
        msg += f"; first error, trial {r['trial_id']}: {r.get('error')}"
    return msg


def _driver_alive(sweep: Sweep) -> bool:
    from vlp_sweep.sweep.lifecycle.lock import driver_alive

    return driver_alive(sweep.run_dir) is not None


def _notes(sweep: Sweep, ranked: pd.DataFrame, finished: pd.DataFrame, data: DataSource) -> list[str]:
    notes = []
    running = int((ranked["status"] == "RUNNING").sum()) if not ranked.empty else 0
    stopped_by = sweep.meta.get("status")
    if stopped_by in ("interrupted", "failed") and not _driver_alive(sweep):
        unfinished = int(ranked["status"].isin(["INTERRUPTED", "RUNNING", "PENDING"]).sum()) if not ranked.empty else 0
        notes.append(f"the sweep was {stopped_by} with {unfinished} trial{'s' if unfinished != 1 else ''} "
                     "unfinished (vlp-sweep run SPACE --name NAME --resume continues it): the best trial, "
                     "comparisons, targets and effects use finished trials only")
    elif sweep.meta.get("status") != "finished" or running:
        notes.append(f"snapshot of a sweep still running ({running} trial{'s' if running != 1 else ''} running): "
                     "numbers will change; "
                     "the best trial, comparisons, targets and effects use finished trials only")
    stopped = int((finished["status"] == "STOPPED").sum())
    if stopped:
        notes.append(f"{stopped} finished trial{'s were' if stopped != 1 else ' was'} stopped early by the "
                     "scheduler: their best_* numbers come from fewer epochs (effects, importance and the expected "
                     "best compare trials at equal budgets)")
    for tid, path in missing_checkpoints(sweep.board):
        notes.append(f"trial {tid}: its checkpoint is missing ({path}: deleted or moved since the sweep recorded "
                     "it): its numbers stand, but promote skips it")
    for line in missing_confirmed(sweep.confirm):
        notes.append(f"{line}: its numbers stand, but promote skips it")
    spec = sweep.spec
    has_plan_numbers = bool(spec.get("targets")) or bool((spec.get("baseline") or {}).get("metrics"))
    if data.synthetic and has_plan_numbers:
        notes.append(f"this sweep ran on synthetic data ({data.detail}): the baseline metrics and targets the "
                     "space states were measured on other data, so they are shown as reference numbers and "
                     "nothing is judged pass/fail against them")
    elif data.kind == "unknown" and has_plan_numbers:
        notes.append(f"{data.detail}: the space's baseline metrics and targets are judged as if measured on "
                     "the same data")
    return notes


def _sources(sweep: Sweep) -> list[str]:
    d = sweep.run_dir
    out = [f"{d / 'sweep.json'}: spec (metric, search space, scheduler, baseline, targets), datasets, status "
           f"{sweep.meta.get('status', 'unknown')}, updated {sweep.meta.get('updated', '?')}"]
    updated = ""
    if not sweep.board.empty and "updated_at" in sweep.board:
        updated = f", last row update {pd.Timestamp(sweep.board['updated_at'].max()).isoformat()}"
    out.append(f"{d / 'leaderboard.parquet'}: {len(sweep.board)} rows (one per trial){updated}: every best_*, "
               "status, config and error shown")
    out.append(f"{d / 'history'}: {len(sweep.history)} rows (one per trial and evaluation): learning "
               "curves, and each trial's metric at each equal budget (effects, importance, expected best)")
    if not sweep.ranks.empty:  # an earlier version's single file
        out.append(f"{d / 'ranks.parquet'}: {len(sweep.ranks)} rows (per-query ranks per trial, epoch and "
                   "direction): intervals and comparisons, at each trial's best_epoch")
    else:
        out.append("ranks/epoch-NNNNNN.parquet in each trial's folder (the leaderboard's trial_dir): per-query "
                   "ranks of each evaluation, read at each listed trial's best_epoch: intervals and comparisons")
    if not sweep.confirm.empty:
        out.append(f"{d / 'confirm.parquet'}: {len(sweep.confirm)} rows (one per confirmed configuration and seed): "
                   "the confirmed result's dev and test numbers, selected epochs and errors")
        out.append(f"{d / 'confirm_ranks.parquet'}: {len(sweep.confirm_ranks)} rows (per-query ranks of each "
                   "confirmation trial's selected checkpoint, dev and test): its intervals and comparisons")
    return out

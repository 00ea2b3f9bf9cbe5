"""What `promote` may install: candidates, best first, from a source; and the pick of the first intact one.

A *source* is a function ``(sweep, trial, metric, mode) -> list[Candidate]`` (best first).
:func:`from_leaderboard` is the default: the finished trials of the search ranked by the selection rule
(``vlp_sweep.selection``), each at the epoch whose checkpoint the leaderboard names. A
confirmation stage supplies its own source, :func:`from_confirmation` (below), and `promote` is unchanged.

:func:`from_confirmation` reads ``confirm.parquet``, the confirmed winner first. The winner is the
configuration with the best dev mean over its seeds (the test split plays no part in choosing it; the
same choice the report's headline names). Of its runs, the one with the best dev value at its selected
epoch is installed (the selection rule over its dev numbers; then the lower seed). The numbers recorded,
and that the re-evaluation must reproduce, are its *test* numbers: ``vlp-sweep eval --split <test
split>`` on the promoted file gives them again. The other configurations' runs follow, in
the same order, so a winner whose checkpoints went missing falls back with one line (:func:`pick`).

:func:`pick` takes the first candidate whose checkpoint is still on disk: a better trial whose file went
missing is skipped with one line saying so; when every checkpoint is missing, one error naming the
sweep and how many are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.errors import UserError, did_you_mean
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.selection import finite_float, selection_key
from vlp_sweep.sweep.tables.results import FINISHED, Sweep, checkpoint_missing, rank_trials, trial_params


@dataclass(frozen=True)
class Candidate:
    """One checkpoint that may become the champion, with the numbers its re-evaluation must reproduce."""

    sweep: str
    trial_id: str
    status: str
    epoch: int
    checkpoint: Path | None  # None: no checkpoint was recorded
    sha256: str | None
    metrics: dict[str, float]  # recorded when the checkpoint was saved (the leaderboard's best_*)
    params: dict[str, Any] = field(default_factory=dict)
    split: str | None = None  # the split ``metrics`` were measured on; None: the checkpoint's eval split
    stage: str = "search"  # search (the leaderboard, dev split) | confirmation

    def value(self, metric: str) -> float | None:
        return self.metrics.get(metric)


Source = Callable[[Sweep, "str | None", str, str], list[Candidate]]


def from_row(sweep: str, row: pd.Series | dict[str, Any]) -> Candidate:
    """A leaderboard row as a candidate (its best epoch and the checkpoint recorded for it)."""
    path = row.get("checkpoint_path")
    epoch = finite_float(row.get("best_epoch"))
    return Candidate(
        sweep=sweep, trial_id=str(row["trial_id"]), status=str(row["status"]),
        epoch=int(epoch) if epoch is not None else -1,
        checkpoint=Path(path) if isinstance(path, str) and path else None,
        sha256=str(row["checkpoint_sha256"]) if isinstance(row.get("checkpoint_sha256"), str) else None,
        metrics={m: v for m in METRIC_NAMES if (v := finite_float(row.get(f"best_{m}"))) is not None},
        params=trial_params(row))


def from_leaderboard(sweep: Sweep, trial: str | None, metric: str, mode: str) -> list[Candidate]:
    """``trial`` alone when given (it must exist and be finished); else every finished trial with the
    metric, ranked by the selection rule."""
    board = sweep.board
    if board.empty:
        raise UserError(f"no finished trial in {sweep.run_dir}: the leaderboard is empty")
    if trial is not None:
        return [from_row(sweep.name, _one_trial(sweep, trial))]
    ranked = rank_trials(sweep.finished(), metric, mode)
    if ranked.empty:
        counts = board["status"].value_counts().to_dict()
        summary = ", ".join(f"{v} {str(k).lower()}" for k, v in sorted(counts.items(), key=str))
        raise UserError(f"no finished trial with a {metric} in {sweep.run_dir} ({summary})")
    return [from_row(sweep.name, r) for _, r in ranked.iterrows()]


def _one_trial(sweep: Sweep, trial: str) -> pd.Series:
    board = sweep.board
    ids = [str(t) for t in board["trial_id"]]
    if trial not in ids:
        shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
        raise UserError(f"trial '{trial}' is not in sweep {sweep.name}{did_you_mean(trial, ids)} (trials: {shown})")
    row = board[board["trial_id"] == trial].iloc[0]
    if row["status"] not in FINISHED:
        raise UserError(f"trial {trial} is {str(row['status']).lower()}: only finished trials "
                        f"({', '.join(s.lower() for s in FINISHED)}) can be promoted")
    return row


def pick(candidates: list[Candidate], metric: str, sweep: str) -> tuple[Candidate, str]:
    """(the best candidate with a checkpoint on disk, a line naming the better ones skipped, or "").

    A single candidate (``--trial``) is not replaced by another: its problem is the error. A checkpoint
    that is there but differs from its recorded sha256 is not skipped either: verification refuses it.
    """
    if len(candidates) == 1:
        c = candidates[0]
        _check_usable(c, metric)
        return c, ""
    recorded = [c for c in candidates if c.checkpoint is not None]
    intact = [c for c in recorded if not checkpoint_missing(str(c.checkpoint))]
    if not recorded:
        raise UserError(f"sweep {sweep}: none of its {len(candidates)} finished trials has a checkpoint recorded")
    if not intact:
        raise UserError(f"sweep {sweep}: every finished trial's checkpoint is missing ({len(recorded)} of "
                        f"{len(recorded)} deleted or moved, e.g. {recorded[0].checkpoint})")
    best = intact[0]
    _check_usable(best, metric)
    skipped = recorded[:next(i for i, c in enumerate(recorded) if c is best)]  # all missing: best is the first intact
    if not skipped:
        return best, ""
    names = ", ".join(f"{c.trial_id} ({metric} {_v(c, metric)})" for c in skipped)
    return best, (f"note: skipped {len(skipped)} better trial{'s' if len(skipped) > 1 else ''} whose checkpoint "
                  f"is missing: {names}; promoting trial {best.trial_id}, the best with its checkpoint on disk")


def _v(c: Candidate, metric: str) -> str:
    v = c.value(metric)
    return "-" if v is None else f"{v:.2f}"


def _check_usable(c: Candidate, metric: str) -> None:
    if c.value(metric) is None:
        raise UserError(f"trial {c.trial_id} has no {metric} in the leaderboard")
    if c.checkpoint is None:
        raise UserError(f"trial {c.trial_id} has no checkpoint recorded in the leaderboard")


# ---------------------------------------------------------------- from the confirmation stage


STAGE = "confirmation"


def has_confirmation(sweep: Sweep) -> bool:
    """Whether the sweep's confirmation stage left a run to promote."""
    c = sweep.confirm
    return not c.empty and bool(((c["status"] == "TERMINATED") & (c["role"] == "top")).any())


def confirmation_problem(sweep: Sweep) -> str | None:
    """Why the confirmation stage gives nothing to promote (failed runs, not run yet, nothing finished), or
    None when it finished every run."""
    c = sweep.confirm
    failed = c[c["status"] != "TERMINATED"] if not c.empty else c
    if len(failed):
        r = failed.iloc[0]
        more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
        return f"its confirmation stage failed ({r['config_id']} seed {r['seed']}: {r['error']}{more})"
    if sweep.meta.get("failed_stage") == "confirmation":
        return f"its confirmation stage failed ({sweep.meta.get('reason', 'no reason recorded')})"
    if not has_confirmation(sweep):
        status = sweep.meta.get("status", "unknown")
        return f"its confirmation stage has not run (sweep {status}; `vlp-sweep run SPACE --resume` continues it)"
    return None


def _run_key(row: pd.Series, metric: str, mode: str) -> tuple[float, float, float, int]:
    dev = {metric: row.get(f"dev_{metric}"), "rsum": row.get("dev_rsum")}
    return (*selection_key(dev, row.get("selected_epoch"), metric, mode), int(row["seed"]))


def ordered_runs(sweep: Sweep, metric: str, mode: str) -> list[pd.Series]:
    """Finished runs of the searched configurations: configurations by dev mean over seeds (then search
    rank: ``sweep.ablate.dev_order``, the report's rule), and within one, runs by the selection rule on their
    dev numbers."""
    from vlp_sweep.sweep.confirmation.ablate import dev_order

    c = sweep.confirm
    done = c[(c["status"] == "TERMINATED") & (c["role"] == "top") & c[f"dev_{metric}"].notna()]
    out: list[pd.Series] = []
    for cid, _ in dev_order(c, metric, mode):
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

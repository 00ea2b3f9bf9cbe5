"""ASHA that a resumed sweep remembers.

Ray Tune keeps its scheduler out of the experiment state (``TuneController.__getstate__`` drops
``_scheduler_alg``) and ``Tuner.restore`` unpickles the scheduler as the Tuner was created: with empty rungs.
Ray 2.60's ``AsyncHyperBandScheduler`` keeps all it knows in its brackets' rungs: per milestone epoch, a dict
of trial id -> the metric the trial reported when it first reached it; a trial reaching a milestone is
stopped when its value is below the rung's ``1 - 1/reduction_factor`` percentile of the values recorded
there before it. After a resume with empty rungs, the first trial at each rung sets no cut-off: a
configuration that every uninterrupted run stopped at epoch 2 ran all its epochs.

:class:`ResumableASHA` rebuilds the rungs from what the trials reported. The first time Tune asks it for a
trial to run (after every restored trial was added, before any runs), it replays each evaluation of the
experiment's own trials from the history (``runs/NAME/history``: epoch, metric, and ``reported_at``, the
order the driver received them in, which is the order ASHA saw them in) through ASHA's own
``on_trial_result``. The rungs then hold what they held; trials the experiment no longer knows (restarted
under new ids after a kill -9) are left out, so the config's new trial is judged as its old one was.
A trial whose last evaluation the replay judged STOP (ASHA's cut, or its last epoch) but that Ray restored
as unfinished (its snapshot predates the stop: kill -9, a full disk) is stopped again as soon as it reports
that epoch again, so it trains no further than it did. Sweeps of an earlier version have no ``reported_at``:
their evaluations are replayed in the order the history holds them (trial by trial).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from vlp_sweep.sweep.tables.parts import read_parts

__all__ = ["ResumableASHA", "evaluations"]


def evaluations(run_dir: str | Path, metric: str, trial_ids: set[str]) -> list[tuple[str, int, float]]:
    """(trial id, epoch, metric) of every evaluation of ``trial_ids`` in the order the driver received them."""
    d = Path(run_dir)
    table = read_parts(d / "history", d / "history.parquet", columns=["trial_id", "epoch", metric, "reported_at"])
    if table is None or table.num_rows == 0 or metric not in table.column_names:
        return []
    table = table.filter(pc.is_in(table["trial_id"], value_set=pa.array(sorted(trial_ids), pa.string())))
    if "reported_at" in table.column_names and table["reported_at"].null_count == 0:
        table = table.take(pc.sort_indices(table["reported_at"]))  # a stable sort: ties keep the file's order
    values = table[metric].to_pylist()
    return [(str(t), int(e), math.nan if v is None else float(v))
            for t, e, v in zip(table["trial_id"].to_pylist(), table["epoch"].to_pylist(), values)]


class ResumableASHA(ASHAScheduler):
    """Ray's ASHA, its rungs rebuilt from ``run_dir``'s history when an experiment (re)starts."""

    run_dir: str | None = None  # class defaults: a scheduler pickled by an earlier version has neither
    _rebuilt = False
    _replaying = False

    def __init__(self, *args: Any, run_dir: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_dir = run_dir
        self.stopped_at: dict[str, int] = {}  # trial -> the epoch the replay stopped it at

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        if not self._rebuilt:
            self._rebuilt = True
            self.rebuild(tune_controller)
        return super().choose_trial_to_run(tune_controller)

    def rebuild(self, tune_controller: Any) -> int:
        """Replay the history into the rungs; returns how many evaluations were replayed."""
        self.stopped_at = {}
        metric = self._metric
        if not self.run_dir or not metric:
            return 0
        trials = {t.trial_id: t for t in tune_controller.get_trials()}
        replayed = evaluations(self.run_dir, metric, set(trials))
        self._replaying = True
        try:
            for tid, epoch, value in replayed:
                result: dict[str, Any] = {self._time_attr: epoch, metric: value}
                if self.on_trial_result(tune_controller, trials[tid], result) == TrialScheduler.STOP:
                    self.stopped_at[tid] = epoch
                else:
                    self.stopped_at.pop(tid, None)  # it went on after that: judged again later
        finally:
            self._replaying = False
        return len(replayed)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if trial.trial_id not in self._trial_info:  # a restored trial may have been replayed already
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        stop = getattr(self, "stopped_at", {}).get(trial.trial_id)
        if stop is not None and not self._replaying and result.get(self._time_attr, 0) >= stop:
            return TrialScheduler.STOP  # reached again where it was stopped before the interruption
        if trial.trial_id not in self._trial_info:
            super().on_trial_add(tune_controller, trial)
        return str(super().on_trial_result(tune_controller, trial, result))

"""A Tune callback that keeps ``runs/<name>/optuna.journal`` for every kind of sweep.

Grid sweeps and random sweeps with grid keys run Ray's ``BasicVariantGenerator``, which knows no
Optuna: this callback records each of their trials in the sweep's study (``create_trial``: the active
searched params with their distributions, RUNNING while it trains, each evaluation an intermediate
value, then the state and value of journal.verdict), so every sweep can be browsed the same way in
``vlp-sweep dashboard``. Sweeps that search with Optuna record their own trials (optuna_search.py);
there the callback only closes the study when the experiment ends: an Optuna trial still RUNNING
whose Tune trial the experiment does not hold is marked FAIL (user attribute ``orphaned``).
The baseline trial is never recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback

from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.sweep.baseline_trial import is_baseline
from vlp_sweep.sweep.journal import StudyLog


class JournalCallback(Callback):
    """Records trials in the study (``record=True``: grid/variant-generator sweeps) and closes it."""

    def __init__(self, spec: SweepSpec, journal: str | Path, study_name: str, record: bool):
        self.spec, self.record = spec, record
        self.log = StudyLog(journal, study_name, spec.mode, metric=spec.metric)

    def _params(self, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(active searched params that fit their distribution, those distributions)."""
        from vlp_sweep.sweep.backends import optuna_distribution

        search = self.spec.to_dict()["search"]
        params, dists = {}, {}
        for key, value in self.spec.active_params(config).items():
            dist = optuna_distribution(search[key])
            try:
                ok = dist._contains(dist.to_internal_repr(value))
            except (ValueError, TypeError):
                ok = False
            if ok:  # a value Ray drew off Optuna's grid (int steps from 0, not low) is left out, not fatal
                params[key], dists[key] = value, dist
        return params, dists

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if not self.record or is_baseline(trial.config):
            return
        params, dists = self._params(trial.config)
        attrs = {"seed": trial.config["run.seed"]} if "run.seed" in trial.config else {}
        if self.log.get(trial.trial_id) is None and not self._take_lost(trial, params, attrs, trials):
            self.log.add_running(trial.trial_id, params, dists, attrs)

    def _take_lost(self, trial: Any, params: dict[str, Any], attrs: dict[str, Any], trials: list[Any]) -> bool:
        """A trial Tune re-created after a kill -9 (same config, new id) takes over the lost one's record."""
        present = {t.trial_id for t in trials if t is not trial}
        trials_so_far = self.log.study.get_trials(deepcopy=False)
        for number in self.log.unclaimed(present):
            ft = trials_so_far[number]
            if ft.params == params and all(ft.user_attrs.get(k) == v for k, v in attrs.items()):
                self.log.hand_over(number, trial.trial_id)
                return True
        return False

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        if self.record and self.spec.metric in result and "epoch" in result:
            self.log.report(trial.trial_id, int(result["epoch"]), float(result[self.spec.metric]))

    def _finish(self, trial: Any, error: bool) -> None:
        if not self.record or is_baseline(trial.config):
            return
        try:
            max_epochs = int(self.spec.trial_config(trial.config).optim.epochs)
        except Exception:  # the trial's own config is invalid: it errored
            max_epochs = int(self.spec.epochs_range()[1])
        epochs = int((trial.last_result or {}).get("epoch") or 0)
        self.log.finish(trial.trial_id, epochs, max_epochs, error)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, error=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._finish(trial, error=True)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if all(t.status in ("TERMINATED", "ERROR") for t in trials):  # an interrupted sweep resumes later
            self.log.fail_unclaimed({t.trial_id for t in trials})

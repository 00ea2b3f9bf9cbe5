"""The baseline as one more trial of the sweep (``baseline: {run: true, config: {...}}``).

The searcher hands out the baseline first, then defers to Optuna, which never sees the baseline's
result: TPE models only its own suggestions. The scheduler never stops the baseline early, so the
report compares the best trial against a baseline trained for its whole budget, query by query.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from vlp_sweep.sweep.asha import ResumableASHA
from vlp_sweep.sweep.trial import BASELINE_KEY

MARKER = {BASELINE_KEY: True}


def is_baseline(config: dict[str, Any]) -> bool:
    return bool(config.get(BASELINE_KEY))


class BaselineFirst(Searcher):
    """Suggests the baseline marker once, first; every other call goes to ``searcher``."""

    def __init__(self, searcher: Searcher):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.baseline_id: str | None = None

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any],
                              **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.baseline_id is None:
            self.baseline_id = trial_id
            return dict(MARKER)
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id != self.baseline_id:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id != self.baseline_id:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def add_evaluated_point(self, *args: Any, **kwargs: Any) -> None:
        self.searcher.add_evaluated_point(*args, **kwargs)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    # Tune's SearchGenerator saves a wrapper's own state (get_state) beside the wrapped searcher's files.
    def get_state(self) -> dict[str, Any]:
        return {"baseline_id": self.baseline_id}

    def set_state(self, state: dict[str, Any]) -> None:
        self.baseline_id = state["baseline_id"]


class BaselineKeepingASHA(ResumableASHA):
    """ASHA for every trial but the baseline, which runs its whole budget and sets no rung cut-off."""

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if not is_baseline(trial.config):
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if is_baseline(trial.config):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if not is_baseline(trial.config):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        if not is_baseline(trial.config):
            super().on_trial_remove(tune_controller, trial)

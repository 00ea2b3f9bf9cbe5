"""The Ray Tune searcher of TPE and random sweeps: an Optuna study that is told what really happened.

Ray's own ``OptunaSearch`` told Optuna COMPLETE with the last reported value even for a trial that
ASHA stopped, so TPE ranked an R@1 from epoch 2 against one from epoch 150 as if both were final,
and its study lived only in the driver's memory. :class:`OptunaSearcher` instead keeps the study in
``runs/<name>/optuna.journal`` (see journal.py for the states and values it tells):

- ``suggest``: ``study.ask()``, the space sampled define-by-run (a conditional key only when its
  condition holds), the Tune trial id stored as the user attribute ``tune_trial_id``; each suggestion's
  sampler is seeded from ``search_alg.seed`` and the trial's number, so a resumed search suggests what the
  uninterrupted one does (``_ask``);
- ``on_trial_result``: every evaluation's metric as an intermediate value at step = epoch (Tune does not
  pass the result a scheduler stops a trial on to ``on_trial_result``: ``on_trial_complete`` records it);
- ``on_trial_complete``: FAIL on error; PRUNED when the trial trained fewer epochs than its own
  ``optim.epochs`` (early-stopped: the leaderboard's STOPPED); otherwise COMPLETE with the trial's
  BEST value over its evaluations (the leaderboard's ``best_*``, the promoted checkpoint's epoch).
  A trial already finished in the study is never told again.

Resume after kill -9: Tune restores this searcher from its last experiment snapshot (``save`` pickles
no storage: the journal is reopened from its path). Optuna trials asked after that snapshot belong to
Tune trials the restored experiment does not know; Tune re-creates as many trials under new ids, and
each of their suggestions takes over one such lost Optuna trial, oldest first, with its params: a
RUNNING one continues under the new id (``rerun_of_tune_trial`` keeps the lost id); one already told
(it ended before the kill) is not told again, the study's ``reruns`` attribute maps the new id to it.
So the study ends with one told trial per Tune trial of the experiment and nothing left RUNNING.

``SeedRepeater`` repeats each suggestion over the sweep's seeds (``scheduler: none``): Optuna sees,
per epoch, the mean over seeds and, at the end, the mean of each seed's best value (the leaderboard's
``group_mean_<metric>``, a mean of ``best_<metric>``).
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune.search import Repeater, Searcher

from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.sweep.backends import define_by_run, optuna_sampler
from vlp_sweep.sweep.journal import StudyLog

FINAL_KEY = "__final_value__"  # result flag: the metric is the value to tell (a seed group's mean best)


class OptunaSearcher(Searcher):
    """Ray Tune ``Searcher`` over the sweep's Optuna study (``journal=None``: in memory)."""

    def __init__(self, spec: SweepSpec, journal: str | Path | None, study_name: str):
        super().__init__(metric=spec.metric, mode=spec.mode)
        self.spec = spec
        self.log = StudyLog(journal, study_name, spec.mode, sampler=optuna_sampler(spec.search_alg),
                            metric=spec.metric)
        self.known: set[str] = set()  # Tune trials this searcher suggested (restored with the snapshot)
        self._orphans: list[int] | None = None  # looked up in the journal on the first suggest

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any],
                              **spec: Any) -> bool:
        return not config  # the space is the spec's; Tune's param_space must stay empty

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        taken = self._take_orphan(trial_id)
        if taken is not None:
            self.known.add(trial_id)
            return self.trial_params(taken.params)
        trial = self._ask()
        extra = define_by_run(self.spec, trial) or {}
        self.log.remember(trial_id, trial)
        self.known.add(trial_id)
        return {**trial.params, **extra}

    def _ask(self) -> Any:
        """``study.ask()`` with a sampler seeded from the sweep's seed and the new trial's number. Tune restores
        this searcher from its last snapshot, which can be older than the last suggestions (kill -9, a full
        disk): one seeded sampler would then draw again what it drew after the snapshot, and the resumed search
        would suggest other configurations than the uninterrupted one. Keyed by the trial's number, the k-th
        suggestion is the same whenever it is made (TPE's other input is the study, which the journal keeps)."""
        study = self.log.study
        number = len(study.get_trials(deepcopy=False))
        alg = self.spec.search_alg
        study.sampler = optuna_sampler(dataclasses.replace(alg, seed=(alg.seed * 1_000_003 + number) % 2**32))
        return study.ask()

    def trial_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Optuna's params of a trial -> the params Tune hands the trial: a shaped key's quantile replaced
        by the value it stands for, a coupled choice's keys added (what ``define_by_run`` returns)."""
        import optuna

        extra = define_by_run(self.spec, optuna.trial.FixedTrial(dict(params))) or {}
        return {**params, **extra}

    def _take_orphan(self, trial_id: str) -> Any:
        if self._orphans is None:  # first call since start or restore: trials lost with Tune's last snapshot
            self._orphans = self.log.unclaimed(self.known)
        return self.log.hand_over(self._orphans.pop(0), trial_id) if self._orphans else None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.metric in result and "epoch" in result:
            self.log.report(trial_id, int(result["epoch"]), float(result[self.metric]))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        ft = self.log.get(trial_id)
        if ft is None or ft.state.is_finished():
            return
        result = result or {}
        if not error and not result.get(FINAL_KEY):  # Tune withholds from on_trial_result the result it stops on
            self.on_trial_result(trial_id, result)
        final = float(result[self.metric]) if result.get(FINAL_KEY) and self.metric in result else None
        epochs = self.max_epochs(self.trial_params(ft.params))
        self.log.finish(trial_id, int(result.get("epoch") or 0), epochs, error, final)

    def max_epochs(self, params: dict[str, Any]) -> int:
        """The trial's own ``optim.epochs`` (searched or fixed): fewer epochs trained means stopped early."""
        try:
            return int(self.spec.trial_config(params).optim.epochs)
        except Exception:  # an invalid sampled config fails in the trial itself: judge it by the widest range
            return int(self.spec.epochs_range()[1])

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"spec": self.spec, "log": self.log, "known": self.known, "metric": self._metric,
                         "mode": self._mode}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.spec, self.log, self.known = state["spec"], state["log"], state["known"]
        self._metric, self._mode = state["metric"], state["mode"]
        self._orphans = None

    def __getstate__(self) -> dict[str, Any]:  # Tune also pickles the Tuner with its searcher
        return {**self.__dict__, "_orphans": None}


class SeedRepeater(Repeater):
    """Ray's ``Repeater`` (each suggestion once per seed, ``__trial_index__`` picks the seed) that also
    forwards per-epoch results: the searcher gets, per epoch, the mean over the group's seeds once
    every seed has reported that epoch, and at the end the mean of each seed's best value."""

    def __init__(self, searcher: Searcher, repeat: int):
        super().__init__(searcher, repeat=repeat, set_index=True)
        self.curves: dict[str, dict[int, float]] = {}  # tune trial id -> epoch -> metric
        self.ended: dict[str, bool] = {}  # tune trial id -> errored

    def _members(self, trial_id: str) -> tuple[Any, list[str]] | None:
        group = self._trial_id_to_group.get(trial_id)
        if group is None:
            return None
        return group, list(group._trials)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        found, metric = self._members(trial_id), self.searcher.metric
        if found is None or metric not in result or "epoch" not in result:
            return
        group, members = found
        epoch = int(result["epoch"])
        self.curves.setdefault(trial_id, {})[epoch] = float(result[metric])
        if len(members) == self.repeat and all(epoch in self.curves.get(m, {}) for m in members):
            mean = float(np.mean([self.curves[m][epoch] for m in members]))
            self.searcher.on_trial_result(group.primary_trial_id, {metric: mean, "epoch": epoch})

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False,
                          **kwargs: Any) -> None:
        found, metric = self._members(trial_id), self.searcher.metric
        if found is None:
            return
        group, members = found
        if result and metric in result and "epoch" in result and not error:  # withheld from on_trial_result
            self.on_trial_result(trial_id, result)
        self.ended[trial_id] = error
        if len(members) < self.repeat or not all(m in self.ended for m in members):
            return
        pick = max if self.searcher.mode == "max" else min
        bests = [pick(self.curves[m].values()) for m in members if not self.ended[m] and self.curves.get(m)]
        epochs = min(max(self.curves.get(m) or {0: 0.0}) for m in members)
        self.searcher.on_trial_complete(
            group.primary_trial_id, result={metric: float(np.mean(bests)) if bests else float("nan"),
                                            "epoch": epochs, FINAL_KEY: bool(bests)},
            error=not bests)

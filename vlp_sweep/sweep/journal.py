"""The sweep's Optuna study on disk: ``runs/<name>/optuna.journal``.

One Optuna study per sweep, named after the sweep, its objective named after the sweep's metric, in
Optuna's ``JournalStorage`` over a ``JournalFileBackend`` (an append-only log that several processes may
read while the driver writes).
Every Tune trial of the search becomes one Optuna trial carrying its Tune trial id as the user
attribute ``tune_trial_id``; the baseline trial (``baseline.run``) is never recorded. While a trial
runs, its Optuna trial is RUNNING and every evaluation's metric is an intermediate value at
step = epoch; when it ends it is told once (:func:`verdict`):

- FAIL: the trial errored (or reported no finite metric);
- PRUNED: it ran fewer epochs than its own ``optim.epochs`` (ASHA stopped it; the leaderboard says
  STOPPED); Optuna takes its last intermediate value as the value, and TPE ranks pruned trials by
  the step they reached, then that value;
- COMPLETE: it ran all its epochs (leaderboard TERMINATED), with the BEST value over its
  evaluations, the same epoch as the leaderboard's ``best_*`` columns and the promoted checkpoint.

TPE/random sweeps create their Optuna trials with ``study.ask()`` (optuna_search.py); grid sweeps and
random sweeps with grid keys add them with ``optuna.trial.create_trial`` (journal_callback.py). No Ray
here: ``vlp-sweep dashboard`` uses this module too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from vlp_sweep.errors import UserError

JOURNAL_FILE = "optuna.journal"
TUNE_ID_ATTR = "tune_trial_id"
# An Optuna trial asked for a Tune trial that a kill -9 lost (started after Ray's last experiment
# snapshot) is handed to the trial that Tune re-creates in its place. A RUNNING one gets the new id as
# tune_trial_id and keeps the lost one in RERUN_ATTR; a finished one cannot change (Optuna freezes it),
# so the study's user attribute RERUNS_ATTR maps every new id to the lost id it stands for.
RERUN_ATTR = "rerun_of_tune_trial"
RERUNS_ATTR = "reruns"
ORPHAN_ATTR = "orphaned"  # FAIL-marked because no trial of the experiment ran it


def verdict(values: Mapping[int, float], epochs_run: int, max_epochs: int, error: bool, mode: str,
            final: float | None = None) -> tuple[str, float | None]:
    """How a finished trial is told: (state name, value or None). ``values`` are its intermediate values
    (epoch -> metric), ``epochs_run`` the epochs it trained, ``max_epochs`` its own ``optim.epochs``;
    ``final`` replaces the best value (a config repeated over seeds: the mean of each seed's best)."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    if error or not finite:
        return "FAIL", None
    if epochs_run < max_epochs:
        return "PRUNED", None  # Optuna records the last intermediate value itself
    best = max(finite.values()) if mode == "max" else min(finite.values())
    return "COMPLETE", best if final is None else final


def direction(mode: str) -> Literal["maximize", "minimize"]:
    return "maximize" if mode == "max" else "minimize"


class StudyLog:
    """The study of one sweep, opened lazily from its journal path (never pickled: Tune pickles the
    searcher and the callbacks, and a reopened journal replays to the same state).

    ``path=None`` keeps the study in memory (the search benchmark replays thousands of trials).
    """

    metric: str | None = None  # a study pickled by an earlier version has none

    def __init__(self, path: str | Path | None, study_name: str, mode: str, sampler: Any = None,
                 metric: str | None = None):
        self.path = None if path is None else str(path)
        self.study_name, self.mode, self.sampler, self.metric = study_name, mode, sampler, metric
        self._study: Any = None
        self._storage: Any = None
        self._ids: dict[str, int] = {}  # tune trial id -> Optuna's internal trial id

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_study": None, "_storage": None, "_ids": {}}

    @property
    def study(self) -> Any:
        """The optuna Study (opened, or created, on first use)."""
        return self._open()

    def _open(self) -> Any:
        if self._study is None:
            import optuna

            storage = optuna.storages.InMemoryStorage() if self.path is None else open_storage(self.path)
            self._study = optuna.create_study(study_name=self.study_name, storage=storage, sampler=self.sampler,
                                              direction=direction(self.mode), load_if_exists=True)
            self._storage = storage
            self._name_metric()
            self._ids = {t.user_attrs[TUNE_ID_ATTR]: t._trial_id for t in self._study.get_trials(deepcopy=False)
                         if TUNE_ID_ATTR in t.user_attrs}
            for new, old in self._study.user_attrs.get(RERUNS_ATTR, {}).items():  # in the order handed over
                if old in self._ids:
                    self._ids.setdefault(new, self._ids[old])
        return self._study

    def _name_metric(self) -> None:
        """The study's objective is the sweep's metric: optuna-dashboard shows its name (``t2v_R1``), not
        "Objective 0". Written once; a resumed study keeps it."""
        import warnings

        import optuna

        if self.metric is None or self._study.metric_names == [self.metric]:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # set_metric_names is one
            self._study.set_metric_names([self.metric])

    def remember(self, tune_id: str, trial: Any) -> None:
        """Tie a trial the caller created (``study.ask()``) to its Tune trial."""
        trial.set_user_attr(TUNE_ID_ATTR, tune_id)
        self._ids[tune_id] = trial._trial_id

    def get(self, tune_id: str) -> Any:
        """The FrozenTrial recorded for a Tune trial, or None."""
        self._open()  # reads the tune ids recorded so far
        tid = self._ids.get(tune_id)
        return None if tid is None else self._storage.get_trial(tid)

    def add_running(self, tune_id: str, params: dict[str, Any], distributions: dict[str, Any],
                    attrs: dict[str, Any] | None = None) -> None:
        """Record a trial that another algorithm sampled (grid), RUNNING until :meth:`finish`."""
        import optuna

        if self.get(tune_id) is not None:
            return  # a restored trial starting again keeps its Optuna trial
        ft = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, params=params,
                                       distributions=distributions, user_attrs={**(attrs or {}), TUNE_ID_ATTR: tune_id})
        self.study.add_trial(ft)
        self._ids[tune_id] = self.study.get_trials(deepcopy=False)[-1]._trial_id  # the driver is the only writer

    def report(self, tune_id: str, epoch: int, value: float) -> None:
        """One evaluation as an intermediate value at step = epoch. An epoch trained again (a trial resumed
        from an older checkpoint, or re-run after a kill) replaces the earlier value, as in the leaderboard's
        history; a finished trial is left alone."""
        ft = self.get(tune_id)
        if ft is None or ft.state.is_finished() or not math.isfinite(value):
            return
        self._storage.set_trial_intermediate_value(ft._trial_id, epoch, value)

    def finish(self, tune_id: str, epochs_run: int, max_epochs: int, error: bool,
               final: float | None = None) -> str | None:
        """Tell Optuna how the trial ended (:func:`verdict`); never twice. Returns the state told."""
        from optuna.trial import TrialState

        ft = self.get(tune_id)
        if ft is None or ft.state.is_finished():
            return None
        epochs_run = max(epochs_run, max(ft.intermediate_values, default=0))
        state, value = verdict(ft.intermediate_values, epochs_run, max_epochs, error, self.mode, final)
        self.study.tell(ft.number, state=TrialState[state], values=value)
        return state

    def unclaimed(self, claimed: set[str], running_only: bool = False) -> list[int]:
        """Numbers of the trials (oldest first) recorded for a Tune trial but held by none in ``claimed``."""
        self._open()
        held = {self._ids[k] for k in claimed if k in self._ids}
        return [t.number for t in self.study.get_trials(deepcopy=False)
                if TUNE_ID_ATTR in t.user_attrs and t._trial_id not in held
                and not (running_only and t.state.is_finished())]

    def hand_over(self, number: int, tune_id: str) -> Any:
        """Give trial ``number``, whose Tune trial was lost, to the Tune trial re-created in its place.
        A RUNNING trial continues under the new id; a finished one was already told, and is not again."""
        ft = self.study.get_trials(deepcopy=False)[number]
        internal, lost = ft._trial_id, ft.user_attrs[TUNE_ID_ATTR]
        if not ft.state.is_finished():
            self._storage.set_trial_user_attr(internal, TUNE_ID_ATTR, tune_id)
            self._storage.set_trial_user_attr(internal, RERUN_ATTR, lost)
        self.study.set_user_attr(RERUNS_ATTR, {**self.study.user_attrs.get(RERUNS_ATTR, {}), tune_id: lost})
        self._ids[tune_id] = internal
        return self._storage.get_trial(internal)

    def fail_unclaimed(self, claimed: set[str]) -> int:
        """Mark FAIL (with ORPHAN_ATTR) every RUNNING trial that no Tune trial in ``claimed`` holds."""
        from optuna.trial import TrialState

        numbers = self.unclaimed(claimed, running_only=True)
        trials = self.study.get_trials(deepcopy=False)
        for n in numbers:
            self._storage.set_trial_user_attr(trials[n]._trial_id, ORPHAN_ATTR, True)
            self.study.tell(n, state=TrialState.FAIL)
        return len(numbers)


def open_storage(path: str | Path) -> Any:
    """Optuna's JournalStorage over the journal file (created when missing)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(path)))


def check_journal(path: Path, study_name: str) -> None:
    """Refuse, before anything is written, a journal that resuming cannot continue: not a journal
    file, a damaged line, or a journal without this sweep's study. A missing or empty one is fine."""
    if not path.exists():
        return
    how = f"{path} cannot be continued"
    fix = "move it away to resume without the study, or restore the sweep's own journal"
    if not path.is_file():
        raise UserError(f"{how}: it is not a file ({fix})")
    raw = path.read_bytes()
    if not raw:
        return
    if not raw.endswith(b"\n"):
        raise UserError(f"{how}: its last line is incomplete, the journal is damaged ({fix})")
    for n, line in enumerate(raw.splitlines(), 1):
        try:
            op = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{how}: line {n} is not an Optuna journal record ({fix})") from None
        if not isinstance(op, dict) or "op_code" not in op:
            raise UserError(f"{how}: line {n} is not an Optuna journal record ({fix})")
    try:
        names = [s.study_name for s in open_storage(path).get_all_studies()]
    except Exception as e:  # Optuna's replay of inconsistent records raises various errors
        raise UserError(f"{how}: Optuna cannot replay it ({type(e).__name__}: {e}) ({fix})") from None
    if study_name not in names:
        raise UserError(f"{how}: it holds no study named '{study_name}' (found: {', '.join(names) or 'none'}) ({fix})")

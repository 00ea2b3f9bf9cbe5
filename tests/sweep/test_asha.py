"""ASHA's rungs rebuilt on resume from what the trials reported (the history), without Ray running."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from vlp_sweep.sweep.asha import ResumableASHA
from vlp_sweep.sweep.baseline_trial import MARKER, BaselineKeepingASHA
from vlp_sweep.sweep.tables.leaderboard import Leaderboard


class Controller:
    """What a scheduler sees of Tune's controller: the experiment's trials."""

    def __init__(self, trials: list[Any]) -> None:
        self.trials = trials

    def get_trials(self) -> list[Any]:
        return self.trials


def trial(tid: str, status: str = "TERMINATED", config: dict[str, Any] | None = None) -> Any:
    return SimpleNamespace(trial_id=tid, status=status, config=config or {})


def asha(cls: type = ASHAScheduler, **kw: Any) -> Any:
    return cls(time_attr="epoch", metric="t2v_R1", mode="max", max_t=8, grace_period=1, reduction_factor=2, **kw)


def live_sweep(run_dir: Path, n: int, seed: int = 0) -> tuple[Any, list[tuple[str, int, str]]]:
    """Trials reporting at random interleavings through a live ASHA, recorded as the driver records them."""
    rng = random.Random(seed)
    live, lb = asha(), Leaderboard(run_dir, "s", "t2v_R1", "max", 8)
    running = {f"t{i}": 0 for i in range(n)}
    for tid in running:
        live.on_trial_add(None, trial(tid))
        lb.start(tid, {}, {})
    decisions = []
    while running:
        tid = rng.choice(sorted(running))
        epoch = running[tid] + 1
        value = rng.uniform(0, 50)
        action = live.on_trial_result(None, trial(tid), {"epoch": epoch, "t2v_R1": value})
        lb.result(tid, {"epoch": epoch, "t2v_R1": value})
        decisions.append((tid, epoch, action))
        if action == TrialScheduler.STOP:
            del running[tid]
        else:
            running[tid] = epoch
    lb.write()
    return live, decisions


def rungs(scheduler: Any) -> list[tuple[float, dict[str, float]]]:
    return [(m, dict(r)) for m, r in scheduler._brackets[0]._rungs]


def test_the_rungs_are_rebuilt_as_they_were(tmp_path: Path) -> None:
    live, decisions = live_sweep(tmp_path, 12)
    assert any(a == TrialScheduler.STOP and e < 8 for _, e, a in decisions)  # ASHA did stop some early
    resumed = asha(ResumableASHA, run_dir=str(tmp_path))
    trials = [trial(f"t{i}") for i in range(12)]
    for t in trials:
        resumed.on_trial_add(None, t)
    assert resumed.choose_trial_to_run(Controller(trials)) is None  # nothing pending; the rungs rebuilt
    assert rungs(resumed) == rungs(live) and any(r for _, r in rungs(live))
    assert resumed.stopped_at == {t: e for t, e, a in decisions if a == TrialScheduler.STOP}


def test_a_trial_restored_as_unfinished_stops_where_it_was_stopped(tmp_path: Path) -> None:
    _, decisions = live_sweep(tmp_path, 12)
    stopped = next((t, e) for t, e, a in decisions if a == TrialScheduler.STOP and e < 8)
    # Ray's snapshot predated the stop (kill -9): the trial comes back PENDING from an earlier checkpoint.
    trials = [trial(f"t{i}", "PENDING" if f"t{i}" == stopped[0] else "TERMINATED") for i in range(12)]
    resumed = asha(ResumableASHA, run_dir=str(tmp_path))
    for t in trials:
        resumed.on_trial_add(None, t)
    assert resumed.choose_trial_to_run(Controller(trials)).trial_id == stopped[0]
    again = trials[int(stopped[0][1:])]
    if stopped[1] > 1:  # the epochs before its stop: judged as before (already in the rungs)
        assert resumed.on_trial_result(None, again, {"epoch": stopped[1] - 1, "t2v_R1": 99.0}) == "CONTINUE"
    assert resumed.on_trial_result(None, again, {"epoch": stopped[1], "t2v_R1": 99.0}) == TrialScheduler.STOP


def test_a_new_trial_is_judged_against_the_rebuilt_rung(tmp_path: Path) -> None:
    lb = Leaderboard(tmp_path, "s", "t2v_R1", "max", 8)
    for i, v in enumerate((10.0, 20.0, 30.0, 40.0)):
        lb.start(f"t{i}", {}, {})
        lb.result(f"t{i}", {"epoch": 1, "t2v_R1": v})
    lb.write()
    trials = [trial(f"t{i}", "PENDING") for i in range(4)]
    resumed = asha(ResumableASHA, run_dir=str(tmp_path))
    for t in trials:
        resumed.on_trial_add(None, t)
    resumed.choose_trial_to_run(Controller(trials))
    new = trial("t9", "RUNNING")
    resumed.on_trial_add(None, new)
    # Empty rungs (Ray's own restore) would let it continue; the rebuilt rung's median is 25.
    assert resumed.on_trial_result(None, new, {"epoch": 1, "t2v_R1": 15.0}) == TrialScheduler.STOP


def test_trials_the_experiment_no_longer_knows_and_the_baseline_are_left_out(tmp_path: Path) -> None:
    lb = Leaderboard(tmp_path, "s", "t2v_R1", "max", 8)
    for tid, v in (("old", 99.0), ("base", 1.0), ("a", 10.0)):
        lb.start(tid, {}, {})
        lb.result(tid, {"epoch": 1, "t2v_R1": v})
    lb.write()
    trials = [trial("base", config=dict(MARKER)), trial("a")]  # "old" came back under a new id
    resumed = asha(BaselineKeepingASHA, run_dir=str(tmp_path))
    for t in trials:
        resumed.on_trial_add(None, t)
    resumed.choose_trial_to_run(Controller(trials))
    assert {tid for _, r in rungs(resumed) for tid in r} == {"a"}

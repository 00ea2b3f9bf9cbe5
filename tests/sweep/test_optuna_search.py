"""The searcher tells Optuna what happened, in runs/NAME/optuna.journal (no Ray run: Tune's calls by hand)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import ConcurrencyLimiter, SearchGenerator

from tests.sweep.conftest import tiny_space
from vlp_sweep.errors import UserError
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.baseline_trial import MARKER, BaselineFirst
from vlp_sweep.sweep.journal import ORPHAN_ATTR, RERUN_ATTR, TUNE_ID_ATTR, check_journal, open_storage, verdict
from vlp_sweep.sweep.journal_callback import JournalCallback
from vlp_sweep.sweep.optuna_search import OptunaSearcher, SeedRepeater

EPOCHS = 4


def _spec(tmp_path: Path, **over: Any) -> Any:
    space = tiny_space(tmp_path / "data", **over)
    space["base"]["optim"]["epochs"] = EPOCHS
    if "optim.epochs" in space["search"]:
        del space["base"]["optim"]["epochs"]
    return parse_space(space)


def _study(journal: Path, name: str = "tiny") -> optuna.Study:
    """The study as another process (the dashboard) reads it from the file."""
    return optuna.load_study(study_name=name, storage=open_storage(journal))


def _by_tune_id(journal: Path) -> dict[str, optuna.trial.FrozenTrial]:
    return {t.user_attrs[TUNE_ID_ATTR]: t for t in _study(journal).trials}


def _run(s: Any, tid: str, curve: list[float], error: bool = False) -> None:
    """Tune's calls for one trial: the last result (the one a scheduler stops it on) only at completion."""
    for epoch, v in enumerate(curve[:-1], 1):
        s.on_trial_result(tid, {"t2v_R1": v, "epoch": epoch})
    last = {"t2v_R1": curve[-1], "epoch": len(curve)} if curve else None
    s.on_trial_complete(tid, result=last, error=error)


def test_verdict_against_plain_rules() -> None:
    assert verdict({1: 3.0, 2: 5.0, 3: 4.0}, 3, 3, False, "max") == ("COMPLETE", 5.0)  # best, not last
    assert verdict({1: 3.0, 2: 5.0, 3: 4.0}, 3, 3, False, "min") == ("COMPLETE", 3.0)
    assert verdict({1: 3.0, 2: 5.0}, 2, 3, False, "max") == ("PRUNED", None)  # Optuna takes the last value
    assert verdict({1: 3.0}, 1, 3, True, "max") == ("FAIL", None)
    assert verdict({}, 3, 3, False, "max") == ("FAIL", None)  # nothing reported
    assert verdict({1: float("nan")}, 3, 3, False, "max") == ("FAIL", None)
    assert verdict({1: 3.0, 2: 5.0}, 2, 2, False, "max", final=4.5) == ("COMPLETE", 4.5)


def test_states_values_and_intermediate_values_in_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    s = OptunaSearcher(_spec(tmp_path), journal, "tiny")
    params = {tid: s.suggest(tid) for tid in ("done", "stopped", "broken")}
    assert set(params["done"]) == {"optim.lr", "loss.hard_negatives"}
    _run(s, "done", [2.0, 6.0, 5.0, 4.0])  # all 4 epochs: COMPLETE with the best (6), not the last (4)
    _run(s, "stopped", [3.0, 1.0])  # ASHA stopped it at epoch 2 of 4: PRUNED, value = last (1)
    _run(s, "broken", [2.5], error=True)
    trials = _by_tune_id(journal)
    assert trials["done"].state == TrialState.COMPLETE and trials["done"].value == 6.0
    assert trials["done"].intermediate_values == {1: 2.0, 2: 6.0, 3: 5.0, 4: 4.0}
    assert trials["stopped"].state == TrialState.PRUNED and trials["stopped"].value == 1.0
    assert trials["stopped"].intermediate_values == {1: 3.0, 2: 1.0}
    assert trials["broken"].state == TrialState.FAIL and trials["broken"].value is None
    assert {k: t.params for k, t in trials.items()} == params
    assert _study(journal).direction == optuna.study.StudyDirection.MAXIMIZE
    # Told once: a second completion (a restored trial finishing again) changes nothing.
    _run(s, "done", [9.0, 9.0, 9.0, 9.0])
    s.on_trial_complete("stopped", result={"t2v_R1": 9.0, "epoch": EPOCHS})
    again = _by_tune_id(journal)
    assert again["done"].value == 6.0 and again["done"].intermediate_values[1] == 2.0
    assert again["stopped"].state == TrialState.PRUNED and len(_study(journal).trials) == 3


def test_trial_of_searched_epochs_is_pruned_only_below_its_own_epochs(tmp_path: Path) -> None:
    spec = _spec(tmp_path, search={"optim.epochs": {"choice": [2, 4]}})
    s = OptunaSearcher(spec, tmp_path / "j", "tiny")
    got = {tid: s.suggest(tid)["optim.epochs"] for tid in "abcdefgh"}
    assert set(got.values()) == {2, 4}
    for tid in got:
        _run(s, tid, [1.0, 2.0])  # 2 epochs: complete for a 2-epoch trial, stopped for a 4-epoch one
    states = {k: t.state for k, t in _by_tune_id(tmp_path / "j").items()}
    assert states == {k: TrialState.COMPLETE if e == 2 else TrialState.PRUNED for k, e in got.items()}


def test_conditional_keys_are_sampled_only_when_active(tmp_path: Path) -> None:
    spec = _spec(tmp_path, search={"loss.hard_negatives": {"choice": ["none", "hcl"]},
                                   "loss.hcl_beta": {"uniform": [0.1, 1.0], "when": {"loss.hard_negatives": "hcl"}}})
    s = OptunaSearcher(spec, tmp_path / "j", "tiny")
    drawn = [s.suggest(str(i)) for i in range(12)]
    assert {d["loss.hard_negatives"] for d in drawn} == {"none", "hcl"}
    assert all(("loss.hcl_beta" in d) == (d["loss.hard_negatives"] == "hcl") for d in drawn)


def test_restore_reopens_the_journal_and_hands_lost_trials_to_their_reruns(tmp_path: Path) -> None:
    """kill -9 after Tune's last snapshot: trials suggested after it come back under new ids."""
    journal, ckpt = tmp_path / "optuna.journal", tmp_path / "snap"
    ckpt.mkdir()
    s = BaselineFirst(OptunaSearcher(_spec(tmp_path), journal, "tiny"))
    assert s.suggest("base") == MARKER
    a, b = s.suggest("a"), s.suggest("b")
    _run(s, "a", [1.0, 2.0, 3.0, 4.0])
    s.on_trial_result("b", {"t2v_R1": 2.0, "epoch": 1})
    SearchGenerator(ConcurrencyLimiter(s, max_concurrent=2)).save_to_dir(str(ckpt), session_str="x")
    blob = b"".join(p.read_bytes() for p in ckpt.iterdir())
    assert b"JournalStorage" not in blob and b"JournalFileBackend" not in blob  # the storage is reopened
    # After the snapshot: "e" starts and is stopped early, "c" starts; then the driver is killed.
    ended, lost = s.suggest("e"), s.suggest("c")
    _run(s, "e", [0.5])
    s.on_trial_result("c", {"t2v_R1": 1.5, "epoch": 1})
    restored = BaselineFirst(OptunaSearcher(_spec(tmp_path), tmp_path / "elsewhere", "other"))
    SearchGenerator(ConcurrencyLimiter(restored, max_concurrent=2)).restore_from_dir(str(ckpt))
    # Tune re-creates two trials in their place: each takes over one lost Optuna trial, oldest first.
    assert restored.suggest("e2") == ended and restored.suggest("c2") == lost
    fresh = restored.suggest("d")
    _run(restored, "b", [2.0, 3.0, 3.0, 3.0])
    _run(restored, "e2", [9.0, 9.0, 9.0, 9.0])  # already told before the kill: not told again
    _run(restored, "c2", [1.0])
    _run(restored, "d", [5.0, 5.0, 5.0, 5.0])
    study = _study(journal)
    trials = _by_tune_id(journal)
    assert sorted(trials) == ["a", "b", "c2", "d", "e"]  # one per Tune trial (e2 is e); never the baseline
    assert study.user_attrs["reruns"] == {"e2": "e", "c2": "c"}
    assert trials["e"].state == TrialState.PRUNED and trials["e"].intermediate_values == {1: 0.5}
    assert trials["c2"].user_attrs[RERUN_ATTR] == "c" and trials["c2"].params == lost
    assert trials["c2"].intermediate_values == {1: 1.0}  # the rerun's epoch 1, as in the leaderboard
    assert trials["d"].params == fresh and trials["b"].params == b and trials["a"].params == a
    assert trials["b"].intermediate_values == {1: 2.0, 2: 3.0, 3: 3.0, 4: 3.0}
    assert not [t for t in study.trials if not t.state.is_finished()]
    # Killed again before any new snapshot: the same lost trials are handed over again, not new ones.
    again = BaselineFirst(OptunaSearcher(_spec(tmp_path), journal, "tiny"))
    SearchGenerator(ConcurrencyLimiter(again, max_concurrent=2)).restore_from_dir(str(ckpt))
    assert [again.suggest(t) for t in ("e3", "c3", "d3")] == [ended, lost, fresh]
    assert len(_study(journal).trials) == 5


def test_seed_repeater_tells_means_over_seeds(tmp_path: Path) -> None:
    s = SeedRepeater(OptunaSearcher(_spec(tmp_path, seeds=[0, 1]), tmp_path / "j", "tiny"), repeat=2)
    c0, c1 = s.suggest("s0"), s.suggest("s1")
    assert c0.pop("__trial_index__") == 0 and c1.pop("__trial_index__") == 1 and c0 == c1
    for epoch, (v0, v1) in enumerate([(1.0, 3.0), (6.0, 2.0), (4.0, 4.0), (2.0, 5.0)], 1):
        s.on_trial_result("s0", {"t2v_R1": v0, "epoch": epoch})
        s.on_trial_result("s1", {"t2v_R1": v1, "epoch": epoch})
    s.on_trial_complete("s0", result={"t2v_R1": 2.0, "epoch": 4})
    assert _by_tune_id(tmp_path / "j")["s0"].state == TrialState.RUNNING  # waits for every seed
    s.on_trial_complete("s1", result={"t2v_R1": 5.0, "epoch": 4})
    (t,) = _study(tmp_path / "j").trials
    assert t.intermediate_values == {1: 2.0, 2: 4.0, 3: 4.0, 4: 3.5}
    assert t.state == TrialState.COMPLETE and t.value == (6.0 + 5.0) / 2  # mean of each seed's best


def _tune_trial(tid: str, config: dict[str, Any], epochs: int, status: str = "TERMINATED") -> Any:
    return SimpleNamespace(trial_id=tid, config=config, last_result={"epoch": epochs}, status=status)


def test_grid_trials_are_recorded_by_the_callback(tmp_path: Path) -> None:
    spec = _spec(tmp_path, search_alg={"type": "grid"},
                 search={"loss.hard_negatives": {"grid": ["none", "hcl"]},
                         "loss.hcl_beta": {"grid": [0.5, 1.0], "when": {"loss.hard_negatives": "hcl"}}})
    cb = JournalCallback(spec, tmp_path / "j", "tiny", record=True)
    cfg = {"none": {"loss.hard_negatives": "none", "loss.hcl_beta": 0.5, "run.seed": 0},
           "hcl": {"loss.hard_negatives": "hcl", "loss.hcl_beta": 1.0, "run.seed": 0},
           "err": {"loss.hard_negatives": "hcl", "loss.hcl_beta": 0.5, "run.seed": 0},
           "base": dict(MARKER)}
    for tid, c in cfg.items():
        cb.on_trial_start(0, [], _tune_trial(tid, c, 0))
    for epoch in (1, 2):
        for tid in cfg:
            cb.on_trial_result(0, [], _tune_trial(tid, cfg[tid], epoch), {"t2v_R1": 10.0 * epoch, "epoch": epoch})
    assert _by_tune_id(tmp_path / "j")["none"].state == TrialState.RUNNING  # visible while it trains
    cb.on_trial_complete(0, [], _tune_trial("none", cfg["none"], 2))
    cb.on_trial_complete(0, [], _tune_trial("hcl", cfg["hcl"], 2))
    cb.on_trial_error(0, [], _tune_trial("err", cfg["err"], 2, "ERROR"))
    trials = _by_tune_id(tmp_path / "j")
    assert sorted(trials) == ["err", "hcl", "none"]  # the baseline is not recorded
    assert trials["none"].params == {"loss.hard_negatives": "none"}  # the inactive key left out
    assert trials["hcl"].params == {"loss.hard_negatives": "hcl", "loss.hcl_beta": 1.0}
    assert trials["hcl"].state == TrialState.PRUNED  # 2 of 4 epochs
    assert trials["err"].state == TrialState.FAIL and trials["none"].user_attrs["seed"] == 0
    assert trials["none"].intermediate_values == {1: 10.0, 2: 20.0}


def test_grid_trial_recreated_after_a_kill_takes_over_the_lost_record(tmp_path: Path) -> None:
    spec = _spec(tmp_path, search_alg={"type": "grid"}, search={"loss.hard_negatives": {"grid": ["none", "hcl"]}})
    cb = JournalCallback(spec, tmp_path / "j", "tiny", record=True)
    none, hcl = {"loss.hard_negatives": "none"}, {"loss.hard_negatives": "hcl"}
    for tid, c in (("x", none), ("y", hcl)):  # both started after Tune's last snapshot, then kill -9
        cb.on_trial_start(0, [], _tune_trial(tid, c, 0))
        cb.on_trial_result(0, [], _tune_trial(tid, c, 1), {"t2v_R1": 3.0, "epoch": 1})
    restarted = [_tune_trial("y2", hcl, 0), _tune_trial("x2", none, 0)]  # same configs, new ids
    fresh = JournalCallback(spec, tmp_path / "j", "tiny", record=True)
    for t in restarted:
        fresh.on_trial_start(0, restarted, t)
    trials = _by_tune_id(tmp_path / "j")
    assert sorted(trials) == ["x2", "y2"] and trials["x2"].params == none and trials["y2"].params == hcl
    assert trials["x2"].user_attrs[RERUN_ATTR] == "x"


def test_experiment_end_fails_running_trials_no_tune_trial_holds(tmp_path: Path) -> None:
    s = OptunaSearcher(_spec(tmp_path), tmp_path / "j", "tiny")
    s.suggest("kept")
    s.suggest("gone")
    _run(s, "kept", [1.0, 1.0, 1.0, 1.0])
    cb = JournalCallback(_spec(tmp_path), tmp_path / "j", "tiny", record=False)
    cb.on_experiment_end([_tune_trial("kept", {}, 4)])
    trials = _by_tune_id(tmp_path / "j")
    assert trials["gone"].state == TrialState.FAIL and trials["gone"].user_attrs[ORPHAN_ATTR] is True
    assert trials["kept"].state == TrialState.COMPLETE


def test_pickled_searcher_holds_no_storage(tmp_path: Path) -> None:
    s = OptunaSearcher(_spec(tmp_path), tmp_path / "j", "tiny")
    s.suggest("a")
    copy = pickle.loads(pickle.dumps(s))  # what Tune does with the Tuner's searcher
    assert copy.log._study is None
    assert copy.log.get("a").params == s.log.get("a").params


def _journal_with(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "optuna.journal"
    optuna.create_study(study_name=name, storage=open_storage(path)).add_trial(
        optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:-7]), "last line is incomplete"),
    (lambda p: p.write_bytes(p.read_bytes() + b"not json\n"), "not an Optuna journal record"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100 + b"\n"), "not an Optuna journal record"),
    (lambda p: p.write_bytes(b'{"op_code": 0, "worker_id": "w"}\n'), "Optuna cannot replay it"),
])
def test_damaged_journal_is_refused(tmp_path: Path, damage: Any, message: str) -> None:
    path = _journal_with(tmp_path, "tiny")
    check_journal(path, "tiny")  # intact: accepted
    damage(path)
    with pytest.raises(UserError, match=message):
        check_journal(path, "tiny")


def test_foreign_journal_is_refused_and_a_missing_one_is_fine(tmp_path: Path) -> None:
    check_journal(tmp_path / "optuna.journal", "tiny")
    path = _journal_with(tmp_path, "someone-else")
    with pytest.raises(UserError, match="no study named 'tiny'.*someone-else"):
        check_journal(path, "tiny")
    path.unlink()
    path.mkdir()
    with pytest.raises(UserError, match="not a file"):
        check_journal(path, "tiny")


def test_shaped_and_coupled_keys_reach_the_trial_as_the_values_they_stand_for(tmp_path: Path) -> None:
    # Optuna models a log-normal by its quantile u in (0, 1) and a coupled choice by its label: the trial
    # must get the learning rate itself and every key the chosen setting sets, also for an orphan handed
    # over after a resume (params read back from the journal).
    search = {"optim.lr": {"lognormal": {"mu": -7.0, "sigma": 0.5}},
              "size": {"choice": {"small": {"model.d_model": 32, "model.heads": 2},
                                  "wide": {"model.d_model": 64, "model.heads": 4}}}}
    space = tiny_space(tmp_path / "data", search=search)
    for k in ("d_model", "heads"):
        del space["base"]["model"][k]
    spec = parse_space(space)
    s = OptunaSearcher(spec, tmp_path / "optuna.journal", "tiny")
    params = s.suggest("t1")
    assert params is not None and 0.0 < params["optim.lr"] < 0.01  # e^-7 ~ 9e-4, not a quantile near 0.5
    assert params["size"] in ("small", "wide")
    width = {"small": 32, "wide": 64}[params["size"]]
    assert params["model.d_model"] == width
    cfg = spec.trial_config(params)
    assert cfg.optim.lr == params["optim.lr"] and cfg.model.d_model == width
    stored = _by_tune_id(tmp_path / "optuna.journal")["t1"]
    assert 0.0 < stored.params["optim.lr"] < 1.0 and stored.params["optim.lr"] != params["optim.lr"]
    assert s.trial_params(stored.params) == params


def test_a_value_written_log_100_is_one_number_in_optuna_the_journal_and_both_columns(tmp_path: Path) -> None:
    from vlp_sweep.sweep.callbacks import LeaderboardCallback
    from vlp_sweep.sweep.trial import TrialContext

    spec = _spec(tmp_path, search={"loss.temperature": {"choice": [0.07, "log(100)"]}})
    s = OptunaSearcher(spec, tmp_path / "j", "tiny")
    drawn = {tid: s.suggest(tid) for tid in ("a", "b", "c", "d", "e", "f")}
    assert {p["loss.temperature"] for p in drawn.values()} == {0.07, 0.01}  # both arms, as numbers
    choices = {t.distributions["loss.temperature"].choices for t in _study(tmp_path / "j").trials}
    assert choices == {(0.07, 0.01)}  # what optuna-dashboard and a resumed TPE read
    cb = LeaderboardCallback(str(tmp_path / "run"), "tiny", "t2v_R1", "max", EPOCHS, TrialContext(spec, str(tmp_path)))
    for tid, params in drawn.items():
        cb._start(SimpleNamespace(trial_id=tid, config=params))
        row = cb._lb().rows[tid]
        assert json.loads(row["params"])["loss.temperature"] == row["loss_temperature"] == params["loss.temperature"]


def test_the_study_names_its_objective_after_the_sweeps_metric(tmp_path: Path) -> None:
    # optuna-dashboard shows the metric's name instead of "Objective 0"
    s = OptunaSearcher(_spec(tmp_path), tmp_path / "j", "tiny")
    s.suggest("a")
    assert _study(tmp_path / "j").metric_names == ["t2v_R1"]
    grid = _spec(tmp_path, search_alg={"type": "grid"}, metric="t2v_R5",
                 search={"loss.hard_negatives": {"grid": ["none", "topk"]}})
    cb = JournalCallback(grid, tmp_path / "g", "tiny", record=True)
    trial = SimpleNamespace(trial_id="g1", config={"loss.hard_negatives": "none", "run.seed": 0})
    cb.on_trial_start(0, [trial], trial)
    assert _study(tmp_path / "g").metric_names == ["t2v_R5"]

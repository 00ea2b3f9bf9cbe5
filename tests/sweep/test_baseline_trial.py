"""baseline.run: the baseline as one more trial, first, unseen by the searcher, never stopped early."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher, SearchGenerator

from tests.sweep.conftest import tiny_space
from vlp_sweep.errors import UserError
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.baseline_trial import MARKER, BaselineFirst, BaselineKeepingASHA
from vlp_sweep.sweep.trial import resolve_trial_config

BASELINE = {"name": "plan", "run": True, "config": {"model.dropout": 0.4, "data.use_siglip": False}}


class Recorder(Searcher):
    """A searcher that suggests numbered configs and records what it is told."""

    def __init__(self) -> None:
        super().__init__(metric="t2v_R1", mode="max")
        self.n, self.results, self.completed = 0, [], []  # type: ignore[var-annotated]

    def suggest(self, trial_id: str) -> dict[str, Any]:
        self.n += 1
        return {"optim.lr": 1e-3 * self.n}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.results.append(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self.completed.append(trial_id)

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"n": self.n}))

    def restore(self, checkpoint_path: str) -> None:
        self.n = json.loads(Path(checkpoint_path).read_text())["n"]


def test_baseline_comes_first_and_its_results_never_reach_the_searcher(tmp_path: Path) -> None:
    inner = Recorder()
    s = BaselineFirst(inner)
    assert s.suggest("a") == MARKER
    assert s.suggest("b") == {"optim.lr": 1e-3} and s.suggest("c") == {"optim.lr": 2e-3}
    for tid in "abc":
        s.on_trial_result(tid, {"t2v_R1": 1.0})
        s.on_trial_complete(tid, {"t2v_R1": 1.0})
    assert inner.results == ["b", "c"] and inner.completed == ["b", "c"]
    # Saved and restored by Tune's own SearchGenerator, wrapped as the driver wraps it (what --resume
    # does, into fresh objects): the baseline is not handed out again and the searcher goes on.
    SearchGenerator(ConcurrencyLimiter(s, max_concurrent=2)).save_to_dir(str(tmp_path), session_str="s")
    again = BaselineFirst(Recorder())
    SearchGenerator(ConcurrencyLimiter(again, max_concurrent=2)).restore_from_dir(str(tmp_path))
    assert again.baseline_id == "a" and again.suggest("d") == {"optim.lr": 3e-3}


def _trial(tid: str, config: dict[str, Any]) -> Any:
    return SimpleNamespace(trial_id=tid, config=config)


def test_asha_stops_a_weak_trial_but_never_the_baseline() -> None:
    asha = BaselineKeepingASHA(time_attr="epoch", metric="t2v_R1", mode="max", max_t=8, grace_period=1,
                               reduction_factor=2)
    good = [_trial(f"g{i}", {"optim.lr": 1e-3}) for i in range(4)]
    weak, base = _trial("weak", {"optim.lr": 1e-1}), _trial("base", dict(MARKER))
    for t in [*good, weak, base]:
        asha.on_trial_add(None, t)
    for t in good:
        asha.on_trial_result(None, t, {"epoch": 1, "t2v_R1": 50.0})
    assert asha.on_trial_result(None, weak, {"epoch": 1, "t2v_R1": 1.0}) == TrialScheduler.STOP
    for epoch in range(1, 9):  # past max_t too: the baseline runs the epochs its config gives
        assert asha.on_trial_result(None, base, {"epoch": epoch, "t2v_R1": 1.0}) == TrialScheduler.CONTINUE
    asha.on_trial_complete(None, base, {"epoch": 8, "t2v_R1": 1.0})
    asha.on_trial_remove(None, base)


def test_baseline_trial_config_is_base_then_baseline_config(sweep_data: Path) -> None:
    spec = parse_space(tiny_space(sweep_data, baseline=BASELINE))
    cfg = resolve_trial_config(spec, dict(MARKER), sweep_data.parent)
    assert cfg.model.dropout == 0.4 and cfg.data.use_siglip is False
    assert cfg.data.max_frames == 24 and cfg.optim.epochs == 2  # the base still applies
    plain = resolve_trial_config(spec, {"optim.lr": 2e-3, "loss.hard_negatives": "none"}, sweep_data.parent)
    assert plain.model.dropout == 0.2 and plain.data.use_siglip is True
    b = spec.budget()
    assert b["trials"] == 3 and b["baseline_trials"] == 1 and b["max_total_epochs"] == 3 * 2


def test_baseline_run_changes_the_fingerprint(sweep_data: Path) -> None:
    quiet = {k: v for k, v in BASELINE.items() if k != "run"}
    a = parse_space(tiny_space(sweep_data, baseline=quiet))
    b = parse_space(tiny_space(sweep_data, baseline=BASELINE))
    c = parse_space(tiny_space(sweep_data, baseline={**quiet, "name": "renamed"}))
    assert a.fingerprint() != b.fingerprint() and a.fingerprint() == c.fingerprint()


@pytest.mark.parametrize("baseline, alg, words", [
    ({"name": "x", "run": True, "metrics": {"t2v_R1": 20}}, "optuna", "needs baseline.config"),
    (BASELINE, "grid", "put the baseline's values in the grid"),
    ({**BASELINE, "config": {"model.dropout": 1.5}}, "optuna", "baseline.config"),
    ({**BASELINE, "run": "yes"}, "optuna", "baseline.run"),
])
def test_bad_baseline_run_is_one_clear_error(sweep_data: Path, baseline: dict[str, Any], alg: str,
                                             words: str) -> None:
    space = tiny_space(sweep_data, baseline=baseline, search_alg={"type": alg})
    if alg == "grid":
        space["search"] = {"optim.lr": {"grid": [1e-3, 2e-3]}}
    with pytest.raises(UserError, match=words):
        parse_space(space)

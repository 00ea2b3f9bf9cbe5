"""The leaderboard callback without a Tune run: what a trial's row records when it starts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.sweep.conftest import tiny_space
from vlp_sweep.space import parse_space
from vlp_sweep.sweep.callbacks import LeaderboardCallback
from vlp_sweep.sweep.trial import TrialContext


def test_a_grid_trial_records_only_the_conditional_keys_that_applied(tmp_path: Path) -> None:
    # search_alg grid hands every trial every key, the inactive loss.hcl_beta included.
    space = tiny_space(tmp_path / "data", search={
        "loss.hard_negatives": {"grid": ["none", "hcl"]},
        "loss.hcl_beta": {"grid": [0.3, 0.9], "when": {"loss.hard_negatives": "hcl"}}},
        search_alg={"type": "grid"}, num_samples=1)
    spec = parse_space(space)
    cb = LeaderboardCallback(str(tmp_path / "run"), "tiny", "t2v_R1", "max", 2, TrialContext(spec, str(tmp_path)))
    for tid, neg in (("a", "none"), ("b", "hcl")):
        cb._start(SimpleNamespace(trial_id=tid, config={"loss.hard_negatives": neg, "loss.hcl_beta": 0.9,
                                                        "run.seed": 0}))
    rows = cb._lb().rows
    assert json.loads(rows["a"]["params"]) == {"loss.hard_negatives": "none", "run.seed": 0}
    assert json.loads(rows["b"]["params"]) == {"loss.hard_negatives": "hcl", "loss.hcl_beta": 0.9, "run.seed": 0}
    assert rows["a"]["loss_hcl_beta"] == 0.5 and rows["b"]["loss_hcl_beta"] == 0.9  # the config each ran with


def test_the_end_of_a_sweep_warns_about_a_named_checkpoint_that_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cb = LeaderboardCallback(str(tmp_path / "run"), "s", "t2v_R1", "max", 2, {})
    kept = tmp_path / "b" / "full.pt"
    kept.parent.mkdir()
    kept.write_bytes(b"x")
    lb = cb._lb()
    for tid, path in (("a", tmp_path / "gone" / "full.pt"), ("b", kept)):
        lb.start(tid, {}, {})
        lb.result(tid, {"epoch": 1, "t2v_R1": 5.0})
        lb.checkpoint(tid, 1, str(path))
        lb.finish(tid)
    cb.on_experiment_end([SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")])
    gone = tmp_path / "gone" / "full.pt"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: trial a: the checkpoint the leaderboard names is missing: {gone}"]


def test_a_callback_pickled_by_an_earlier_version_gets_its_context_parsed_once(tmp_path: Path) -> None:
    # Before the spec travelled typed, the callback held it as plain data in a dict (Ray pickled it so).
    spec = parse_space(tiny_space(tmp_path / "data"))
    state = {"args": (str(tmp_path / "run"), "tiny", "t2v_R1", "max", 2), "board": None, "last_write": 0.0,
             "write_failed": False, "ctx": {"spec": spec.to_dict(), "cwd": str(tmp_path), "select_metric": "t2v_R1",
                                            "seeds": [0], "cpus_per_trial": 1, "import_paths": []}}
    cb = LeaderboardCallback.__new__(LeaderboardCallback)
    cb.__setstate__(state)
    assert cb.ctx == TrialContext(spec, str(tmp_path))
    cb._start(SimpleNamespace(trial_id="a", config={"optim.lr": 2e-3, "loss.hard_negatives": "none"}))
    assert cb._lb().rows["a"]["optim_lr"] == 2e-3

"""Effects, importance and the expected best compare trials at equal budgets (ASHA rungs, full budget), each
with its metric at that epoch from the history, on a sweep whose every number is known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.report.conftest import Fake, fake_space, fake_sweep
from vlp_sweep.report.budgets import MIN_TRIALS, rung_epochs
from vlp_sweep.report.build import build_report
from vlp_sweep.report.render import document, to_dict, to_markdown
from vlp_sweep.report.types import Report
from vlp_sweep.sweep.tables.results import load_sweep

HCL = {"loss.hard_negatives": "hcl"}
NONE = {"loss.hard_negatives": "none"}
# The quickstart's trap: warmup-20 trials look bad on their best_* columns only because ASHA stopped them at
# epoch 2. At epoch 2 both warmup values score a mean of 5.0.
TRIALS = [
    Fake("w0a", {"optim.warmup_steps": 0, **NONE}, {2: 4.0, 4: 9.0, 6: 16.0}),
    Fake("w0b", {"optim.warmup_steps": 0, **HCL, "loss.hcl_beta": 0.3}, {2: 5.0, 4: 10.0, 6: 17.0}),
    Fake("w0c", {"optim.warmup_steps": 0, **NONE}, {2: 6.0, 4: 8.0}),
    Fake("w20a", {"optim.warmup_steps": 20, **HCL, "loss.hcl_beta": 0.9}, {2: 5.5}),
    Fake("w20b", {"optim.warmup_steps": 20, **NONE}, {2: 4.5}),
    Fake("w20c", {"optim.warmup_steps": 20, **NONE}, {2: 5.0, 4: 9.5}),
    Fake("ev3", {"optim.warmup_steps": 0, **NONE}, {3: 7.0, 6: 15.0}),  # evaluates every 3 epochs
    Fake("base", {"__baseline__": True}, {2: 1.0, 4: 2.0, 6: 3.0}),  # the baseline trial: left out
    Fake("err", {"optim.warmup_steps": 20, **NONE}, {2: 9.9}, end="error"),  # not finished: left out
    Fake("run", {"optim.warmup_steps": 0, **NONE}, {2: 9.8}, end="running"),
]


@pytest.fixture(scope="module")
def rep(tmp_path_factory: pytest.TempPathFactory) -> Report:
    root = tmp_path_factory.mktemp("fake")
    return build_report(load_sweep(fake_sweep(root / "runs" / "fake", fake_space(root / "data"), TRIALS)),
                        resamples=200)


def test_rungs_are_the_ones_ray_tune_asha_judges_at() -> None:
    from ray.tune.schedulers.async_hyperband import _Bracket

    for grace, rf, max_t in ((2, 2, 6), (1, 2, 8), (2, 2, 8), (1, 3, 27), (1, 1.5, 6), (3, 4, 100), (5, 2, 5)):
        milestones = [m for m, _ in _Bracket(grace, max_t, rf, s=0)._rungs]
        want = sorted({math.ceil(m) for m in milestones if math.ceil(m) < max_t})  # max_t: the full budget
        got = rung_epochs({"type": "asha", "grace_period": grace, "reduction_factor": rf}, max_t)
        assert got == want, (grace, rf, max_t, milestones)
    assert rung_epochs({"type": "asha", "grace_period": 1, "reduction_factor": 1.5}, 6) == [1, 2, 3, 4]
    assert rung_epochs({"type": "none"}, 6) == []


def test_budgets_count_trials_with_an_evaluation_at_the_epoch(rep: Report) -> None:
    got = [(b.epoch, b.label, b.n, b.no_eval) for b in rep.budgets]
    # ev3 passed epochs 2 and 4 without evaluating there; base, err and run are never counted.
    assert got == [(2, "epoch 2 (rung 1)", 6, 1), (4, "epoch 4 (rung 2)", 4, 1), (6, "epoch 6 (full budget)", 3, 0)]


def test_effects_compare_values_at_the_same_epoch(rep: Report) -> None:
    warmup = next(e for e in rep.effects if e.key == "optim.warmup_steps")
    at = {a.budget.epoch: {r.label: r for r in a.rows} for a in warmup.at}
    assert at[2]["0"].n == 3 and at[2]["20"].n == 3
    assert at[2]["0"].mean.estimate == pytest.approx(5.0) == at[2]["20"].mean.estimate
    assert at[4]["20"].n == 1 and math.isnan(at[4]["20"].mean.low)  # one trial: no interval
    assert set(at[6]) == {"0"} and at[6]["0"].mean.estimate == pytest.approx(16.0)
    md = to_markdown(document(rep, set()))
    assert "9.50 (1 trial: no interval)" in md
    # The interval is a t interval over the trials' values at that epoch.
    ys = np.array([9.0, 10.0, 8.0])
    half = 4.303 * ys.std(ddof=1) / math.sqrt(3)
    assert (at[4]["0"].mean.low, at[4]["0"].mean.high) == pytest.approx((9 - half, 9 + half), abs=2e-3)


def test_a_conditional_key_counts_only_the_trials_where_it_was_active(rep: Report) -> None:
    beta = next(e for e in rep.effects if e.key == "loss.hcl_beta")
    first = beta.at[0]
    assert sorted(tid for _, _, tid in first.points) == ["w0b", "w20a"] and first.inactive == 4
    imp = rep.importance[0]
    assert imp.budget is not None and imp.budget.epoch == 2 and imp.n_trials == 6
    assert imp.unrated["loss.hcl_beta"] == f"active in 2 trials, needs >= {MIN_TRIALS}"
    assert set(imp.values) == {"optim.warmup_steps", "loss.hard_negatives"}
    assert sum(imp.values.values()) == pytest.approx(1.0)


def test_no_importance_below_the_minimum_number_of_trials_at_a_budget(rep: Report) -> None:
    by_epoch = {imp.budget.epoch: imp for imp in rep.importance if imp.budget}
    assert not by_epoch[6].values and by_epoch[6].note == f"needs >= {MIN_TRIALS} trials (have 3)"


def test_the_expected_best_falls_back_to_the_highest_rung_with_enough_trials(rep: Report) -> None:
    eb = rep.expected_best
    assert eb.budget is not None and eb.budget.epoch == 4  # the full budget has 3 trials
    assert sorted(eb.values) == [("w0a", 9.0), ("w0b", 10.0), ("w0c", 8.0), ("w20c", 9.5)]
    assert "highest budget with >= 4 trials (the full budget has 3)" in eb.note
    assert eb.curve[0][1] == pytest.approx(np.mean([9.0, 10.0, 8.0, 9.5]))
    assert [n for n, _, _ in eb.curve] == [1, 2, 3, 4]


def test_every_equal_budget_number_is_a_history_row(rep: Report, tmp_path: Path) -> None:
    history = pd.read_parquet(Path(rep.run_dir) / "history").set_index(["trial_id", "epoch"])
    doc = to_dict(rep)
    for e in doc["effects"]:
        for a in e["at"]:
            for _, value, tid in a["points"]:
                assert history.loc[(tid, a["budget"]["epoch"]), "t2v_R1"] == value
    eb = doc["expected_best"]
    for tid, value in eb["values"]:
        assert history.loc[(tid, eb["budget"]["epoch"]), "t2v_R1"] == value
    json.dumps(doc)  # plain JSON


def test_without_asha_the_full_budget_is_the_only_one(tmp_path: Path) -> None:
    space = fake_space(tmp_path / "data", scheduler={"type": "none"})
    run = fake_sweep(tmp_path / "runs" / "flat", space, [t for t in TRIALS if 6 in t.values or t.trial_id == "w0c"])
    rep = build_report(load_sweep(run), resamples=200)
    assert [(b.epoch, b.label, b.n) for b in rep.budgets] == [(6, "epoch 6 (full budget)", 3)]
    assert all(len(e.at) <= 1 for e in rep.effects)
    assert rep.expected_best.budget is None and "needs >= 4 trials at one budget" in rep.expected_best.note

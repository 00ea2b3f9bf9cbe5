"""The report's Monitoring section: the checklist per trial from the leaderboard's health columns, the
trials to look at first, and the time cost of fusion against keypoints only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.report.conftest import SmallSweep, clone_sweep
from vlp_sweep.report.checklist import FUSION, KPTS, analyse, input_costs, ratio_verdict
from vlp_sweep.report.types import Monitoring
from vlp_sweep.sweep.tables.leaderboard import read_table
from vlp_sweep.sweep.tables.results import load_sweep


def _row(tid: str, siglip: int, sps: float, **cfg: object) -> dict[str, object]:
    config = {"data.max_frames": 64, "model.d_model": 128, "optim.lr": 1e-3, **cfg}
    return {"trial_id": tid, "status": "TERMINATED", "fed_kpts_dim": 231, "fed_siglip_dim": siglip,
            "samples_per_s": sps, "config_json": json.dumps(config)}


def test_fusion_cost_is_measured_on_trials_that_differ_only_in_inputs() -> None:
    board = pd.DataFrame([
        _row("a", 768, 100.0), _row("b", 0, 130.0),  # a pair at 64 frames: 1.3x
        _row("c", 768, 40.0, **{"data.max_frames": 180}), _row("d", 0, 56.0, **{"data.max_frames": 180}),  # 1.4x
        _row("e", 768, 10.0, **{"model.d_model": 512}),  # no keypoints-only partner: left out of the ratio
        _row("f", 0, 130.0, **{"optim.lr": 5e-4}),  # lr does not set a step's cost: same group as b
    ])
    costs, ratio, pairs, note = input_costs(board)
    assert pairs == 2 and ratio == pytest.approx((1.3 + 1.4) / 2)
    assert [(c.label, c.n) for c in costs] == [(FUSION, 3), (KPTS, 3)]
    assert costs[0].s_per_1k == pytest.approx(1000 / 40.0)  # median of 10, 25, 100 s per 1000 clips
    assert "pair" in note


def test_without_pairs_the_ratio_is_rough_and_says_so() -> None:
    board = pd.DataFrame([_row("a", 768, 50.0, **{"model.d_model": 256}), _row("b", 0, 100.0)])
    _, ratio, pairs, note = input_costs(board)
    assert (ratio, pairs) == (2.0, 0) and "rough" in note
    verdict = ratio_verdict(Monitoring(ratio=ratio, pairs=pairs, note=note))
    assert "not judged" in verdict and "above" not in verdict  # 2.0x would be "above" with a matched pair
    assert "above the plan" in ratio_verdict(Monitoring(ratio=2.0, pairs=1, note=note))
    _, ratio, _, note = input_costs(pd.DataFrame([_row("a", 768, 50.0)]))
    assert ratio is None and "not fed both" in note


def test_monitoring_of_the_small_sweep(small_sweep: SmallSweep, tmp_path: Path) -> None:
    # t1 made to fail a check and t2 to warn, as the trainer would have written them; t3 errored
    run_dir = clone_sweep(small_sweep.run_dir, tmp_path / "runs" / "small",
                          t0={"health": "pass", "health_eval_loss": "pass", "health_flags": ""},
                          t1={"health": "fail", "health_checks": "fail", "health_flags": "missed eval_loss < 3"},
                          t2={"health": "warn", "health_train_loss": "warn", "health_flags": "stall@2"})
    board = read_table(run_dir / "leaderboard.parquet").set_index("trial_id")
    assert board.loc["t0", "fed_kpts_dim"] > 0 and board.loc["t0", "fed_siglip_dim"] == 8
    assert board.loc["t0", "health_inputs"] == "pass" and board.loc["t0", "micro_batch"] == 16
    m = analyse(load_sweep(run_dir))
    assert [t.trial_id for t in m.rows] == ["t3", "t1", "t2", "t0"]  # the error, then worst first
    assert [t for t, _ in m.look_first] == ["t3", "t1", "t2"]
    assert "simulated failure" in m.look_first[0][1] and m.look_first[2][1] == "stall@2"
    t0 = next(t for t in m.rows if t.trial_id == "t0")
    assert t0.inputs == f"kpts {int(board.loc['t0', 'fed_kpts_dim'])} + siglip 8"
    assert t0.samples_per_s == board.loc["t0", "samples_per_s"]  # traces back to the leaderboard row
    assert m.checks == ["eval_loss < 3 by epoch 100"] and m.ratio is None  # every trial was fed both inputs


def test_the_section_in_every_format(small_sweep: SmallSweep, tmp_path: Path) -> None:
    from vlp_sweep.report.build import build_report
    from vlp_sweep.report.render import document, to_dict, to_markdown
    from vlp_sweep.report.render.monitoring import line

    rep = build_report(load_sweep(small_sweep.run_dir), resamples=100)
    md = to_markdown(document(rep, set()))
    section = md.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    assert "| t0 |" in section.replace("**", "") and "no NaN/inf" in section and "### Look at these first" in section
    assert "not fed both input sets" in section
    assert to_dict(rep)["monitoring"]["rows"][0]["trial_id"] == "t3"
    assert line(rep).startswith("monitoring: ") and "look first: t3 (error: RuntimeError" in line(rep)

"""A report of an interrupted sweep says so (and how to continue), not "still running"."""

from __future__ import annotations

from pathlib import Path

from tests.report.conftest import Fake, fake_space, fake_sweep
from vlp_sweep.report.build import build_report
from vlp_sweep.report.render.terminal import STATUS_WORDS
from vlp_sweep.sweep.tables.leaderboard import mark_interrupted
from vlp_sweep.sweep.tables.results import load_sweep

TRIALS = [Fake("t0", {"optim.warmup_steps": 0, "loss.hard_negatives": "none"}, {2: 4.0, 4: 6.0, 6: 8.0}),
          Fake("t1", {"optim.warmup_steps": 20, "loss.hard_negatives": "none"}, {2: 5.0}, end="running")]


def test_interrupted_sweep_is_reported_as_interrupted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    run = fake_sweep(tmp_path / "runs" / "s", fake_space(tmp_path / "data"), TRIALS, {"status": "interrupted"})
    assert mark_interrupted(run) == 1  # what the driver does when a signal stopped the sweep
    rep = build_report(load_sweep(run), resamples=200)
    notes = " ".join(rep.notes)
    assert "was interrupted with 1 trial unfinished" in notes and "--resume" in notes
    assert "still running" not in notes
    assert STATUS_WORDS["INTERRUPTED"] == "interrupted"

"""Numbers from elsewhere are labelled: on synthetic data the plan's baseline metrics and targets are reference
numbers (no pass/fail, no comparison); a baseline that ran as a trial is on the same data and still compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.report.conftest import Fake, fake_space, fake_sweep
from vlp_sweep.report.build import build_report
from vlp_sweep.report.datasource import data_source
from vlp_sweep.report.render import document, to_markdown
from vlp_sweep.report.render.terminal import summary_lines
from vlp_sweep.sweep.tables.results import load_sweep

TRIALS = [Fake(f"t{i}", {"optim.warmup_steps": w, "loss.hard_negatives": "none"}, {2: v, 4: v + 4, 6: v + 8})
          for i, (w, v) in enumerate([(0, 4.0), (20, 5.0), (0, 3.0)])]
PLAN = {"name": "plan", "metrics": {"t2v_R1": 19.65, "t2v_R5": 47.78}}  # numbers only: no config, no trial


def _data(root: Path, meta: dict[str, Any] | None) -> Path:
    root.mkdir(parents=True)
    if meta is not None:
        (root / "meta.json").write_text(json.dumps(meta))
    return root


SYNTH_META = {"provenance": {"source": "synthetic", "tool": "vlp-sweep data synth"}}
IMPORT_META = {"source": "import", "provenance": {"tool": "vlp-sweep 0.1"}}


@pytest.mark.parametrize(("datasets", "meta", "kind"), [
    ([{"path": "d", "source": "synthetic"}], IMPORT_META, "synthetic"),  # sweep.json wins over meta.json
    ([{"path": "d", "source": "import"}], SYNTH_META, "real"),
    ([{"path": "a", "source": "import"}, {"path": "b", "source": "synthetic"}], None, "synthetic"),
    ([{"path": "d", "source": None}], None, "unknown"),
    (None, SYNTH_META, "synthetic"),  # older sweep.json: the data's meta.json
    (None, IMPORT_META, "real"),
    (None, None, "unknown"),
])
def test_where_the_data_came_from(tmp_path: Path, datasets: list[dict[str, Any]] | None,
                                  meta: dict[str, Any] | None, kind: str) -> None:
    data = _data(tmp_path / "data", meta)
    extra = {"datasets": datasets} if datasets is not None else None
    run = fake_sweep(tmp_path / "runs" / "s", fake_space(data), TRIALS, extra)
    got = data_source(load_sweep(run))
    assert got.kind == kind, got
    if kind == "unknown":
        assert "data source unknown" in got.detail


def test_a_relative_data_path_is_found_from_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _data(tmp_path / "project" / "data" / "qs", SYNTH_META)
    run = fake_sweep(tmp_path / "project" / "runs" / "s", fake_space(Path("data/qs")), TRIALS)
    monkeypatch.chdir(tmp_path)  # not the project: the path as given does not resolve
    assert data_source(load_sweep(run)).kind == "synthetic"


def test_on_synthetic_data_the_plans_numbers_are_reference_only(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", SYNTH_META)
    run = fake_sweep(tmp_path / "runs" / "s", fake_space(data, baseline=PLAN), TRIALS)
    rep = build_report(load_sweep(run), resamples=200)
    assert rep.data.synthetic and rep.baseline is not None and rep.baseline.reference
    assert all(ok is None for row in rep.targets for _, _, ok in row.levels)  # t2v_R1 13 >= 10 would pass
    vs = next(c for c in rep.comparisons if c.label == "best vs baseline")
    assert vs.result is None and "shown for reference, not compared" in vs.note
    assert any("ran on synthetic data" in n for n in rep.notes)
    md = to_markdown(document(rep, set()))
    assert ">= 10.00: reference |" in md and "baseline (reference, other data)" in md
    targets = md.split("## Baseline and targets")[1].split("##")[0]
    assert ": pass" not in targets and ": fail" not in targets
    assert "target good: t2v_R1 13.00 vs 10.00: reference (other data), not judged" in summary_lines(rep)


def test_on_real_data_the_targets_are_judged(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", IMPORT_META)
    run = fake_sweep(tmp_path / "runs" / "s", fake_space(data, baseline=PLAN), TRIALS)
    rep = build_report(load_sweep(run), resamples=200)
    assert rep.data.kind == "real" and rep.baseline is not None and not rep.baseline.reference
    r1 = next(row for row in rep.targets if row.metric == "t2v_R1")
    assert r1.best == 13.0 and r1.levels == [("good", 10.0, True)]
    assert not any("synthetic" in n for n in rep.notes)


def test_a_baseline_trial_on_synthetic_data_is_still_compared(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", SYNTH_META)
    trials = [*TRIALS, Fake("base", {"__baseline__": True}, {2: 1.0, 4: 2.0, 6: 3.0})]
    run = fake_sweep(tmp_path / "runs" / "s", fake_space(data), trials)  # baseline.run with the plan's metrics
    rep = build_report(load_sweep(run), resamples=200)
    assert rep.baseline is not None and rep.baseline.trial_id == "base" and rep.baseline.reference
    vs = next(c for c in rep.comparisons if c.label == "best vs baseline")
    assert "trial base" in vs.b and "reference" not in vs.note  # the paired route (no ranks in this fake sweep)
    r1 = next(row for row in rep.targets if row.metric == "t2v_R1")
    assert (r1.baseline, r1.stated) == (3.0, 19.65)  # the trial's number, and the plan's as a reference

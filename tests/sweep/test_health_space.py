"""The health: section (defaults, round trip, bad input as one line with exit 2) and the leaderboard's
health columns."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vlp_sweep.cli import main
from vlp_sweep.errors import UserError
from vlp_sweep.space import load_space, parse_space
from vlp_sweep.sweep.tables.leaderboard import LEADERBOARD_SCHEMA, Leaderboard, read_history, read_table
from vlp_sweep.train.watch.health_config import COLUMNS, PLAN_CHECKS, Check, HealthConfig

SPACE = """\
name: h
base: {optim.batch_size: 16}
search:
  optim.lr: {loguniform: [1.0e-4, 1.0e-3]}
"""


def load(tmp_path: Path, extra: str) -> object:
    p = tmp_path / "space.yaml"
    p.write_text(SPACE + textwrap.dedent(extra))
    return load_space(p)


def test_defaults_and_the_plan_check(tmp_path: Path) -> None:
    spec = load(tmp_path, "")
    assert spec.health == HealthConfig()  # type: ignore[attr-defined]
    assert spec.health.checks == PLAN_CHECKS  # type: ignore[attr-defined]


def test_section_parses_and_round_trips(tmp_path: Path) -> None:
    spec = load(tmp_path, """\
        health:
          window: 3
          min_gpu_util: 90
          min_micro_batch: 4
          checks:
            - {metric: eval_loss, below: 3.0, by_epoch: 100}
            - {metric: t2v_R1, above: 5, by_epoch: 10}
        """)
    h = spec.health  # type: ignore[attr-defined]
    assert (h.window, h.min_gpu_util, h.min_micro_batch) == (3, 90.0, 4)
    assert h.checks == (Check("eval_loss", below=3.0, by_epoch=100), Check("t2v_R1", above=5.0, by_epoch=10))
    again = parse_space(spec.to_dict())  # type: ignore[attr-defined]
    assert again == spec and again.health == h
    # thresholds are not the experiment: changing them keeps the sweep's fingerprint (resume allowed)
    assert again.fingerprint() == load(tmp_path, "").fingerprint()  # type: ignore[attr-defined]


@pytest.mark.parametrize("extra, parts", [
    ("health: {window: 0}", ["line 5", "health.window", ">= 1"]),
    ("health: {min_decrease: -0.1}", ["health.min_decrease", ">= 0"]),
    ("health: {plateau_tol: fast}", ["health.plateau_tol", "expected a number"]),
    ("health: {min_gpu_util: 150}", ["health.min_gpu_util", "<= 100"]),
    ("health: {stop_on_nonfinite: 1}", ["health.stop_on_nonfinite", "true or false"]),
    ("health: {min_micro_batch: 2.5}", ["health.min_micro_batch", "integer"]),
    ("health: {min_micro_batch: 32}", ["health.min_micro_batch", "32 is above optim.batch_size 16"]),
    ("health: {windw: 3}", ["health.windw", "did you mean 'window'"]),
    ("health: {checks: [{metric: eval_loss, below: 3, above: 1}]}", ["health.checks[0]", "exactly one"]),
    ("health: {checks: [{metric: eval_los, below: 3}]}", ["health.checks[0].metric", "did you mean 'eval_loss'"]),
    ("health: {checks: [{metric: loss, below: 3, by_epoch: 0}]}", ["health.checks[0].by_epoch", ">= 1"]),
])
def test_bad_health_is_one_line(tmp_path: Path, extra: str, parts: list[str]) -> None:
    with pytest.raises(UserError) as e:
        load(tmp_path, extra)
    msg = str(e.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg


def test_floor_above_a_searched_batch_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(SPACE + "  optim.batch_size: {choice: [8, 64]}\nhealth: {min_micro_batch: 16}\n")
    p.write_text(p.read_text().replace("base: {optim.batch_size: 16}", "base: {}"))
    assert main(["validate", str(p), "--no-data"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16 is above optim.batch_size 8" in err[0]


def _result(epoch: int, **health: object) -> dict[str, object]:
    return {"epoch": epoch, "step": epoch * 3, "loss": 4.0, "eval_loss": 4.0, "t2v_R1": 10.0, **health}


def test_leaderboard_and_history_hold_the_health_columns(tmp_path: Path) -> None:
    assert set(COLUMNS) <= set(LEADERBOARD_SCHEMA.names)
    lb = Leaderboard(tmp_path, "s", "t2v_R1", "max", 4)
    lb.start("a", {"optim.epochs": 4}, {})
    lb.result("a", _result(1, health="pass", health_flags="", micro_batch=64.0, fed_kpts_dim=231))
    lb.result("a", _result(2, health="warn", health_flags="plateau@1", micro_batch=32, oom_rescues=1,
                           health_oom="warn", gpu_util=45.5, fed_kpts_dim=231))
    lb.start("b", {"optim.epochs": 4}, {})
    lb.result("b", _result(1, health="pass", health_finite="pass", health_flags=""))
    lb.finish("b", error="Traceback...\nvlp_sweep.train.watch.health.NonFiniteError: non-finite training loss nan")
    lb.start("c", {"optim.epochs": 4}, {})
    lb.finish("c", error="vlp_sweep.train.watch.oom.OutOfMemoryFloorError: out of memory at micro-batch 4 (...)")
    lb.write()
    board = read_table(tmp_path / "leaderboard.parquet").set_index("trial_id")
    a, b = board.loc["a"], board.loc["b"]
    assert (board.loc["c", "health"], board.loc["c", "health_oom"]) == ("fail", "fail")
    assert (a.health, a.health_flags, a.micro_batch, a.oom_rescues, a.gpu_util) == ("warn", "plateau@1", 32, 1, 45.5)
    assert a.fed_kpts_dim == 231
    assert (b.status, b.health, b.health_finite, b.health_flags) == ("ERROR", "fail", "fail", "non-finite loss")
    hist = read_history(tmp_path)
    assert list(hist[hist.trial_id == "a"].micro_batch) == [64, 32]
    assert list(hist[hist.trial_id == "a"].health) == ["pass", "warn"]


def test_status_shows_health_next_to_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    run_dir = tmp_path / "runs" / "s"
    lb = Leaderboard(run_dir, "s", "t2v_R1", "max", 6)
    lb.start("run1", {"optim.epochs": 6}, {})
    lb.result("run1", _result(3, samples_per_s=812.4, micro_batch=64, health="warn", health_flags="stall@2"))
    lb.start("run2", {"optim.epochs": 6}, {})
    lb.result("run2", _result(1, health="pass", health_flags="", micro_batch=128))
    lb.start("done", {"optim.epochs": 6}, {})
    lb.result("done", _result(6, health="fail", health_flags="missed eval_loss < 3 by epoch 5"))
    lb.finish("done")
    lb.write()
    (run_dir / "sweep.json").write_text(json.dumps({"name": "s", "status": "running", "spec": {"metric": "t2v_R1"}}))
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    at = [i for i, ln in enumerate(out.splitlines()) if ln.strip() == "running"]  # the running trials' table
    assert len(at) == 1
    running = "\n".join(out.splitlines()[at[0]:])
    lines = {ln.split()[1]: ln for ln in running.splitlines() if ln.split()[1:2] in (["run1"], ["run2"])}
    assert "3/6" in lines["run1"] and "812" in lines["run1"] and "64" in lines["run1"]
    assert "warn stall@2" in lines["run1"] and "pass" in lines["run2"] and "1/6" in lines["run2"]
    assert "done" not in running and "fail missed" in out  # in the leaderboard table (its flags wrap)

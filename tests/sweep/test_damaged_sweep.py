"""Damaged files and data, and a driver that dies, with a real sweep (issue 23's table; the rows that need
no Ray are in tests/test_damaged_files.py, the full disk + resume in test_resume_asha.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.ray_procs import alive, stop_processes, tree
from tests.sweep.conftest import REPO, tiny_space, wait_for, write_space
from vlp_sweep.cli import main
from vlp_sweep.sweep.tables.leaderboard import read_table

ROW = ["trial_id", "status", "epochs", "best_epoch", "best_t2v_R1", "checkpoint_path", "checkpoint_sha256"]


def _one_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in ln for ln in err), err
    for w in words:
        assert w in err[-1], (w, err[-1])
    return err[-1]


@pytest.mark.slow
def test_resume_rebuilds_a_leaderboard_cut_in_half(sweep_data: Path, tmp_path: Path) -> None:
    path = write_space(tmp_path / "space.yaml", tiny_space(sweep_data, num_samples=2))
    args = ["run", str(path), "--name", "cut", "--runs-root", str(tmp_path / "runs")]
    assert main(args) == 0
    run_dir = tmp_path / "runs" / "cut"
    before = read_table(run_dir / "leaderboard.parquet")[ROW].sort_values("trial_id").reset_index(drop=True)
    board = run_dir / "leaderboard.parquet"
    board.write_bytes(board.read_bytes()[: board.stat().st_size // 2])
    assert main([*args, "--resume"]) == 0
    assert json.loads((run_dir / "sweep.json").read_text())["status"] == "finished"  # never "failed"
    after = read_table(board)[ROW].sort_values("trial_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, before)  # rebuilt from Ray's trials, the history, the checkpoints


def _nan_copy(data: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(data, to)
    kp = np.load(to / "keypoints.npy", mmap_mode="r+")
    kp[5, 3, 0] = np.nan
    kp.flush()
    del kp
    return to


def test_validate_refuses_nan_keypoints_as_data_info_does(sweep_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    broken = _nan_copy(sweep_data, tmp_path / "broken")
    assert main(["data", "info", str(broken)]) == 2
    said = _one_line(capsys, "keypoints.npy: contains NaN or inf values")
    path = write_space(tmp_path / "space.yaml", tiny_space(broken))
    before = sorted(p.name for p in tmp_path.iterdir())
    for cmd in (["validate", str(path)], ["run", str(path), "--runs-root", str(tmp_path / "runs")]):
        assert main(cmd) == 2
        assert said.removeprefix("error: ") in _one_line(capsys, "data.path")
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/ made


@pytest.mark.slow
def test_a_sweep_whose_every_trial_fails_ends_with_one_line(sweep_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Every learning rate blows the weights up: each trial stops at its first NaN loss.
    space = tiny_space(sweep_data, search={"optim.lr": {"loguniform": [1e29, 1e30]}}, num_samples=2,
                       confirm={"top": 1, "seeds": [1], "split": "test"})
    path = write_space(tmp_path / "space.yaml", space)
    assert main(["run", str(path), "--name", "nan", "--runs-root", str(tmp_path / "runs")]) == 2
    _one_line(capsys, "all 2 trials of the search failed; the first, trial ", "NonFiniteError", "nan")
    assert json.loads((tmp_path / "runs" / "nan" / "sweep.json").read_text())["status"] == "finished"


def _start(tmp_path: Path, sweep_data: Path) -> tuple[subprocess.Popen[str], Path]:
    space = tiny_space(sweep_data, num_samples=2, max_concurrent=2)
    space["base"]["optim"]["epochs"] = 500  # trains until killed
    path = write_space(tmp_path / "space.yaml", space)
    run_dir = tmp_path / "runs" / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "killed", "--runs-root",
                             str(tmp_path / "runs")], cwd=REPO, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def training() -> bool:
        b = read_table(run_dir / "leaderboard.parquet") if (run_dir / "leaderboard.parquet").exists() else None
        return b is not None and (b.status == "RUNNING").sum() == 2 and b.epochs.max() >= 1

    assert wait_for(training, 240), proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
    time.sleep(2)  # Ray's agents are up
    return proc, run_dir


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", pytest.param("Ctrl-C twice", marks=pytest.mark.heavy)])
def test_the_sweeps_own_ray_ends_with_its_driver_and_rows_say_interrupted(sweep_data: Path, tmp_path: Path,
                                                                          how: str) -> None:
    proc, run_dir = _start(tmp_path, sweep_data)
    ray = [p for p in tree(proc.pid)[1:] if "watchdog" not in " ".join(p.cmdline())]
    assert {p.name() for p in ray} >= {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}
    try:
        if how == "kill -9":
            os.kill(proc.pid, signal.SIGKILL)  # the driver alone, as `kill -9 PID` does
        else:
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        assert wait_for(lambda: not alive(ray), 10), [(p.pid, p.name()) for p in alive(ray)]
    finally:
        stop_processes(alive(ray))  # only if the test failed: what outlived its driver
    assert wait_for(lambda: set(read_table(run_dir / "leaderboard.parquet").status) == {"INTERRUPTED"}, 10)
    assert json.loads((run_dir / "sweep.json").read_text())["status"] == "interrupted"

"""An interrupted sweep ends as the same experiment: after Ctrl-C, SIGTERM, kill -9 or a full disk during the
search, ``--resume`` gives every configuration the search epochs an uninterrupted run of the same seed gives
it, and the same best trial (ASHA's rungs rebuilt from the history: vlp_sweep/sweep/asha.py).

One trial at a time and seeded TPE make the uninterrupted run deterministic: each trial reaches ASHA's rungs
in one order, and each suggestion sees the same finished trials."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.ray_procs import alive, stop_processes, tree
from tests.sweep.conftest import REPO, tiny_space, wait_for, write_space
from tests.sweep.test_study_e2e import STATE_OF, _held_by, _study
from vlp_sweep.cli import main
from vlp_sweep.sweep.tables.leaderboard import read_history, read_table
from vlp_sweep.sweep.tables.results import rank_trials

INTERRUPT_AT = 3  # the third trial has started (Ray made its folder): two have ended, one of them stopped early


def space(data: Path) -> dict[str, Any]:
    search = {"optim.lr": {"loguniform": [1e-4, 3e-3]}, "loss.hard_negatives": {"choice": ["none", "topk"]}}
    s = tiny_space(data, num_samples=6, max_concurrent=1, search=search, metric="rsum",  # R@1 ties on 48 clips
                   scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2})
    s["base"]["optim"] = {"epochs": 4, "batch_size": 8}  # rungs at epochs 1 and 2; slow enough to interrupt
    s["base"]["model"].update(d_model=96, embed_dim=96, video_layers=2)
    s["base"]["data.max_frames"] = 48
    return s


def summary(run_dir: Path) -> dict[str, Any]:
    """Per configuration (its sampled params), the epochs the search trained it; the best one and its value."""
    board = read_table(run_dir / "leaderboard.parquet")
    assert board.trial_id.is_unique and set(board.status) <= {"TERMINATED", "STOPPED"}, board[["trial_id", "status"]]
    hist = read_history(run_dir)
    assert not hist.duplicated(["trial_id", "epoch"]).any()
    assert hist.groupby("trial_id").epoch.max().to_dict() == dict(zip(board.trial_id, board.epochs))
    best = rank_trials(board, "rsum", "max").iloc[0]
    # Configurations that tie with the best (the same metric, rsum and epoch) are told apart by trial id,
    # which differs between runs: the best is its value and the configurations that reach it.
    tied = board[(board.best_rsum == best.best_rsum) & (board.best_epoch == best.best_epoch)]
    return {"epochs": dict(sorted(zip(board.params, board.epochs.astype(int)))),
            "search_epochs": int(board.epochs.sum()), "best": (float(best.best_rsum), sorted(tied.params))}


def _args(tmp_path: Path, data: Path, name: str) -> list[str]:
    path = write_space(tmp_path / f"{name}.yaml", space(data))
    return ["run", str(path), "--name", name, "--runs-root", str(tmp_path / "runs")]


@pytest.fixture(scope="module")
def uninterrupted(sweep_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    assert main(_args(tmp, sweep_data, "u")) == 0
    return summary(tmp / "runs" / "u")


def _mid_search(run_dir: Path) -> bool:
    return len(list(run_dir.glob("trial_main_*"))) >= INTERRUPT_AT


def _interrupt_subprocess(args: list[str], run_dir: Path, kind: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: _mid_search(run_dir), 300), proc.communicate(timeout=5)[0] if proc.poll() else ""
        time.sleep(0.5)  # into its first epoch
        local_ray = tree(proc.pid)
        if kind == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole foreground group
        elif kind == "sigterm":
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=180)
        stop_processes(alive(local_ray))  # what outlived its driver; never `ray stop`
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == {"ctrl-c": 130, "sigterm": 143, "kill -9": -9}[kind], out


def _fill_disk_mid_search(args: list[str], run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = pq.write_table

    def full_once_mid_search(table: Any, where: Any, **kw: Any) -> None:
        if _mid_search(run_dir):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, where, **kw)

    with monkeypatch.context() as m:
        m.setattr(pq, "write_table", full_once_mid_search)
        assert main(args) == 2
    assert json.loads((run_dir / "sweep.json").read_text())["status"] == "failed"


def _interrupted_then_resumed(kind: str, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    args = _args(tmp_path, data, "i")
    run_dir = tmp_path / "runs" / "i"
    if kind == "full disk":
        _fill_disk_mid_search(args, run_dir, monkeypatch)
    else:
        _interrupt_subprocess(args, run_dir, kind)
    before = summary_of_unfinished(run_dir)
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args, "--resume"], cwd=REPO, text=True,
                         capture_output=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    after = summary(run_dir)
    _study_agrees(run_dir)
    print(f"\n{kind}: interrupted at {before} evaluations; resumed: {after['search_epochs']} search epochs, "
          f"best {after['best']}")
    return after


def _study_agrees(run_dir: Path) -> None:
    """The Optuna study tells what the leaderboard says: no trial FAIL there and TERMINATED here."""
    board = read_table(run_dir / "leaderboard.parquet")
    study = _study(run_dir)
    held = _held_by(study)
    assert len(study.trials) == len(board) and all(t.state.is_finished() for t in study.trials)
    assert {r.trial_id: held[r.trial_id].state for r in board.itertuples()} == \
        {r.trial_id: STATE_OF[r.status] for r in board.itertuples()}


def summary_of_unfinished(run_dir: Path) -> int:
    return len(read_history(run_dir))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ctrl-c", pytest.param("sigterm", marks=pytest.mark.heavy),
                                  pytest.param("kill -9", marks=pytest.mark.heavy),
                                  pytest.param("full disk", marks=pytest.mark.heavy)])
def test_a_resumed_search_is_the_uninterrupted_one(kind: str, uninterrupted: dict[str, Any], sweep_data: Path,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    print(f"\nuninterrupted: {uninterrupted['search_epochs']} search epochs, best {uninterrupted['best']}")
    assert any(e < 4 for e in uninterrupted["epochs"].values())  # ASHA stopped some configurations early
    after = _interrupted_then_resumed(kind, sweep_data, tmp_path, monkeypatch)
    assert after["epochs"] == uninterrupted["epochs"]
    assert after["best"] == uninterrupted["best"]

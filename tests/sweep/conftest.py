"""Sweep fixtures: a small synthetic dataset, a helper to write a space YAML next to it, and a Ray
session "outside" the tests (with a sweep running on it) that the Ray tests must leave alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from tests.ray_procs import RayNode, alive, start_head, stop_processes, tree

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vlp_sweep.data.synth import synthesize

    out = tmp_path_factory.mktemp("sweepdata") / "data"
    synthesize(out, train=160, dev=48, test=16, signers=6, heldout_signers=2, lexicon=40)
    return out


def tiny_space(data: Path, **over: Any) -> dict[str, Any]:
    space: dict[str, Any] = {
        "name": "tiny",
        "base": {"data.path": str(data), "data.max_frames": 24,
                 "model": {"d_model": 32, "heads": 2, "video_layers": 1, "text_layers": 1, "embed_dim": 32},
                 "optim": {"batch_size": 32, "epochs": 2}, "run.device": "cpu"},
        "search": {"optim.lr": {"loguniform": [1e-3, 3e-3]}, "loss.hard_negatives": {"choice": ["none", "topk"]}},
        "search_alg": {"type": "optuna", "seed": 0, "n_startup_trials": 2},
        "scheduler": {"type": "none"}, "metric": "t2v_R1", "num_samples": 2, "max_concurrent": 2,
        "resources": {"cpu": 1, "gpu": 0}, "wandb": {"mode": "disabled"},
    }
    for k, v in over.items():
        space[k] = v
    return space


def wait_for(pred: Any, timeout: float) -> bool:
    """Polls ``pred`` every half second until it holds (True) or ``timeout`` seconds pass (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.5)
    return False


def write_space(path: Path, space: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@dataclass
class OutsideRay:
    """A Ray session started outside the tests that use it, with a sweep running on it (a user's)."""

    head: RayNode
    sweep: subprocess.Popen[bytes]
    board: Path

    def vital(self) -> list[psutil.Process]:
        """The processes that must outlive every test: `ray start`, GCS, raylet, the sweep's driver
        and its trial's worker (idle workers and agents may come and go on their own)."""
        procs = [*self.head.processes(), *tree(self.sweep.pid)]
        keep = {"ray", "gcs_server", "raylet"}
        return [p for p in alive(procs) if p.pid in (self.head.proc.pid, self.sweep.pid)
                or _name(p) in keep or (_name(p).startswith("ray::") and _name(p) not in IDLE_OR_AGENT)]


IDLE_OR_AGENT = {"ray::IDLE", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}


def _name(p: psutil.Process) -> str:
    try:
        return str(p.name())
    except psutil.NoSuchProcess:
        return ""


@pytest.fixture(scope="session")
def outside_ray(sweep_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutsideRay]:
    """Started once, at low priority, by the first test that needs it; its trial trains until the end."""
    head = start_head(num_cpus=1, nice=19)
    runs = tmp_path_factory.mktemp("outside")
    space = tiny_space(sweep_data, num_samples=1, max_concurrent=1)
    space["base"]["optim"]["epochs"] = 100_000
    path = write_space(runs / "space.yaml", space)
    sweep = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "outside",
                              "--address", head.address, "--runs-root", str(runs / "runs")],
                             cwd=REPO, env=head.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True, preexec_fn=lambda: os.nice(19))
    outside = OutsideRay(head, sweep, runs / "runs" / "outside" / "leaderboard.parquet")
    try:
        deadline = time.time() + 300
        while not _trial_running(outside.board):
            assert sweep.poll() is None and time.time() < deadline, "the outside sweep did not start"
            time.sleep(1)
        yield outside
    finally:
        procs = tree(sweep.pid)
        os.killpg(sweep.pid, signal.SIGKILL)  # our own sweep's session (start_new_session)
        stop_processes(alive(procs))
        sweep.wait()
        head.stop()


def _trial_running(board: Path) -> bool:
    from vlp_sweep.sweep.tables.leaderboard import read_table

    if not board.exists():
        return False
    b = read_table(board)
    return bool(((b.status == "RUNNING") & (b.epochs >= 1)).any())


@pytest.fixture
def outside_survives(outside_ray: OutsideRay) -> Iterator[None]:
    """Fails the test that uses it if the outside Ray session or its sweep lost a process meanwhile."""
    vital = outside_ray.vital()
    assert outside_ray.sweep.poll() is None and len(vital) >= 5, [(p.pid, _name(p)) for p in vital]
    yield
    gone = [(p.pid, _name(p)) for p in vital if not alive([p])]
    assert not gone, f"processes of a Ray session outside this test were ended: {gone}"
    assert outside_ray.sweep.poll() is None, "the sweep running on the outside Ray session ended"

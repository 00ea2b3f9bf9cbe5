"""A two-node Ray cluster on this machine: a head and a worker node; trials land on both.

Every node here is the test's own (tests/ray_procs.py); a Ray session outside the tests, with a
sweep running on it, must survive each test (the `outside_survives` fixture)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.ray_procs import RayNode, start_head, start_worker
from tests.sweep.conftest import REPO, tiny_space, write_space
from vlp_sweep.sweep.tables.leaderboard import read_table


@pytest.fixture
def two_nodes() -> Iterator[RayNode]:
    """A head and a worker node of this test's own, stopped by their processes (never `ray stop`)."""
    head = start_head(num_cpus=1)
    try:
        worker = start_worker(head, num_cpus=1)
        try:
            yield head
        finally:
            worker.stop()
    finally:
        head.stop()


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
def test_trials_land_on_both_nodes(two_nodes: RayNode, sweep_data: Path, tmp_path: Path,
                                   outside_survives: None) -> None:
    space = tiny_space(sweep_data, num_samples=4, max_concurrent=2)
    path = write_space(tmp_path / "space.yaml", space)
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "cluster",
                          "--address", two_nodes.address, "--runs-root", str(tmp_path / "runs"),
                          "--storage", str(tmp_path / "shared")],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env=two_nodes.env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    board = pd.read_parquet(tmp_path / "runs" / "cluster" / "leaderboard.parquet")
    assert len(board) == 4 and set(board.status) <= {"TERMINATED", "STOPPED"}
    assert board.node_id.nunique() == 2, board[["trial_id", "node_id"]]
    assert all(str(tmp_path / "shared") in p for p in board.checkpoint_path)


@pytest.fixture
def one_cpu_node() -> Iterator[RayNode]:
    head = start_head(num_cpus=1)
    try:
        yield head
    finally:
        head.stop()


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
def test_fractional_resources_pack_two_trials_on_one_slot(one_cpu_node: RayNode, sweep_data: Path,
                                                          tmp_path: Path, outside_survives: None) -> None:
    # One CPU on the node; trials asking for half of it must run two at a time (as gpu: 0.5 does on a GPU).
    space = tiny_space(sweep_data, num_samples=2, max_concurrent=2, resources={"cpu": 0.5, "gpu": 0})
    space["base"]["optim"]["epochs"] = 3
    path = write_space(tmp_path / "space.yaml", space)
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "packed",
                             "--address", one_cpu_node.address, "--runs-root", str(tmp_path / "runs")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=one_cpu_node.env)
    board_path = tmp_path / "runs" / "packed" / "leaderboard.parquet"
    most_running = 0
    while proc.poll() is None:
        if board_path.exists():
            most_running = max(most_running, int((read_table(board_path).status == "RUNNING").sum()))
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert most_running == 2
    assert set(pd.read_parquet(board_path).status) == {"TERMINATED"}

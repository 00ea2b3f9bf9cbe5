"""A two-node Ray cluster on loopback: a head and a worker node on this machine; trials land on both."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep.conftest import REPO, tiny_space, write_space
from vlp_sweep.sweep.leaderboard import read_table

RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray(*args: str) -> subprocess.CompletedProcess[str]:
    # Token auth is on by default: the worker joins with the head's token (same home) in token mode.
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    return subprocess.run([RAY, *args], capture_output=True, text=True, timeout=180, env=env)


def _start_head() -> str:
    """A one-CPU Ray head on loopback; returns its address (skips the test where Ray cannot start)."""
    port = _free_port()
    head = _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=1",
                "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats")
    if head.returncode != 0:
        pytest.skip(f"cannot start a Ray head here: {head.stderr.strip().splitlines()[-1:]}")
    return f"127.0.0.1:{port}"


@pytest.fixture
def two_nodes() -> Iterator[str]:
    address = _start_head()
    try:
        worker = _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                      "--num-gpus=0", "--disable-usage-stats")
        assert worker.returncode == 0, worker.stderr
        yield address
    finally:
        _ray("stop", "--force")


@pytest.mark.slow
def test_trials_land_on_both_nodes(two_nodes: str, sweep_data: Path, tmp_path: Path) -> None:
    space = tiny_space(sweep_data, num_samples=4, max_concurrent=2)
    path = write_space(tmp_path / "space.yaml", space)
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "cluster",
                          "--address", two_nodes, "--runs-root", str(tmp_path / "runs"),
                          "--storage", str(tmp_path / "shared")],
                         cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "RAY_AUTH_MODE": "token"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    board = pd.read_parquet(tmp_path / "runs" / "cluster" / "leaderboard.parquet")
    assert len(board) == 4 and set(board.status) <= {"TERMINATED", "STOPPED"}
    assert board.node_id.nunique() == 2, board[["trial_id", "node_id"]]
    assert all(str(tmp_path / "shared") in p for p in board.checkpoint_path)


@pytest.fixture
def one_cpu_node() -> Iterator[str]:
    address = _start_head()
    try:
        yield address
    finally:
        _ray("stop", "--force")


@pytest.mark.slow
def test_fractional_resources_pack_two_trials_on_one_slot(one_cpu_node: str, sweep_data: Path,
                                                          tmp_path: Path) -> None:
    # One CPU on the node; trials asking for half of it must run two at a time (as gpu: 0.5 does on a GPU).
    space = tiny_space(sweep_data, num_samples=2, max_concurrent=2, resources={"cpu": 0.5, "gpu": 0})
    space["base"]["optim"]["epochs"] = 3
    path = write_space(tmp_path / "space.yaml", space)
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "packed",
                             "--address", one_cpu_node, "--runs-root", str(tmp_path / "runs")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "RAY_AUTH_MODE": "token"})
    board_path = tmp_path / "runs" / "packed" / "leaderboard.parquet"
    most_running = 0
    while proc.poll() is None:
        if board_path.exists():
            most_running = max(most_running, int((read_table(board_path).status == "RUNNING").sum()))
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stdout.read() if proc.stdout else ""
    assert most_running == 2
    assert set(pd.read_parquet(board_path).status) == {"TERMINATED"}

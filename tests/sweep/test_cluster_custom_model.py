"""A model of your own on the two-node loopback cluster: the driver ships the factory's module with
Ray's runtime environment (py_modules) and trials on both nodes, the confirmation stage's too, import it
from there (a cluster trial is given no local import paths, so nothing else could make it importable)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.ray_procs import RayNode
from tests.sweep.test_cluster import two_nodes  # noqa: F401  (the test's own head + worker, tests/ray_procs.py)
from tests.sweep.test_custom_model_e2e import project, run_sweep


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
def test_user_model_trials_run_on_both_nodes(two_nodes: RayNode, sweep_data: Path,  # noqa: F811
                                             tmp_path: Path) -> None:
    space = project(tmp_path, sweep_data, num_samples=4, confirm={"top": 1, "seeds": [1, 2]})
    run_sweep(space, tmp_path / "runs", "--name", "custom_cluster", "--address", two_nodes.address,
              "--storage", str(tmp_path / "shared"), env=two_nodes.env)
    board = pd.read_parquet(tmp_path / "runs" / "custom_cluster" / "leaderboard.parquet")
    assert len(board) == 4 and set(board.status) == {"TERMINATED"}, board[["status", "error"]]
    assert board.node_id.nunique() == 2, board[["trial_id", "node_id"]]
    assert all(json.loads(o)["hidden"] in (16, 32) for o in board.model_options)
    # the confirmation stage's runs import it from the same py_modules
    confirm = pd.read_parquet(tmp_path / "runs" / "custom_cluster" / "confirm.parquet")
    assert len(confirm) == 2 and set(confirm.status) == {"TERMINATED"}, confirm[["config_id", "error"]]

"""A small sweep of a model of your own (the example's GRU model), end to end: Ray trials import it
from the space's code: folder, the leaderboard records its options, the report renders, promote
re-evaluates the winner and eval rebuilds the promoted file through the factory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.sweep.conftest import REPO, write_space
from vlp_sweep.cli import main

EXAMPLE = REPO / "examples" / "custom_model"


def custom_space(data: Path, **over: Any) -> dict[str, Any]:
    space: dict[str, Any] = {
        "name": "custom", "code": ["mymodels"],
        "base": {"data.path": str(data), "data.max_frames": 24, "run.device": "cpu",
                 "model": {"factory": "gru_model:build", "embed_dim": 32, "options": {"word_dim": 16}},
                 "optim": {"batch_size": 32, "epochs": 2, "grad_accum": 2, "accum_mode": "cached"}},
        "search": {"model.options.hidden": {"choice": [16, 32]}, "model.options.dropout": {"uniform": [0.0, 0.2]},
                   "optim.lr": {"loguniform": [1e-3, 3e-3]}},
        "search_alg": {"type": "optuna", "seed": 0, "n_startup_trials": 2}, "scheduler": {"type": "none"},
        "metric": "t2v_R1", "num_samples": 2, "max_concurrent": 2, "resources": {"cpu": 1, "gpu": 0},
        "wandb": {"mode": "disabled"}}
    space.update(over)
    return space


def project(tmp: Path, data: Path, **over: Any) -> Path:
    """A space file next to a code folder holding the user's model (not importable from the launch folder)."""
    (tmp / "mymodels").mkdir()
    shutil.copy(EXAMPLE / "gru_model.py", tmp / "mymodels" / "gru_model.py")
    return write_space(tmp / "space.yaml", custom_space(data, **over))


def run_sweep(space: Path, runs: Path, *extra: str, env: dict[str, str] | None = None) -> None:
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", "run", str(space), "--runs-root", str(runs), *extra],
                         cwd=REPO, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.mark.slow
def test_sweep_report_promote_and_eval_of_a_user_model(sweep_data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run_sweep(project(tmp_path, sweep_data), tmp_path / "runs")
    run_dir = tmp_path / "runs" / "custom"
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert len(board) == 2 and set(board.status) == {"TERMINATED"}, board[["status", "error"]]
    assert set(board.model_factory) == {"gru_model:build"}
    options = [json.loads(o) for o in board.model_options]
    assert all(o["word_dim"] == 16 and o["hidden"] in (16, 32) for o in options)
    assert board.best_t2v_R1.notna().all()

    assert main(["report", str(run_dir), "--out", str(tmp_path / "reports"), "--resamples", "200"]) == 0
    assert "model.options.hidden" in (tmp_path / "reports" / "custom" / "report.md").read_text()
    dest = tmp_path / "champion"
    assert main(["promote", str(run_dir), "--to", str(dest), "--device", "cpu", "--no-wandb"]) == 0
    capsys.readouterr()
    # Promote imported gru_model to re-evaluate; forget it: eval finds it through the folder the checkpoint records.
    sys.modules.pop("gru_model")
    sys.path.remove(str(tmp_path / "mymodels"))
    assert main(["eval", "--ckpt", str(dest / "vlp_best_full.pt"), "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = board.iloc[0]
    assert out["t2v_R1"] == pytest.approx(best.best_t2v_R1)
    sys.modules.pop("gru_model", None)

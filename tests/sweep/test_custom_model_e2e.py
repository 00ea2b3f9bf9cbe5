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
def test_sweep_confirm_report_promote_and_eval_of_a_user_model(sweep_data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # The confirmation stage imports the model from the code: folder exactly as the search's trials do.
    space = project(tmp_path, sweep_data, confirm={"top": 1, "seeds": [1, 2], "split": "test"},
                    baseline={"name": "narrow GRU", "config": {"model.options.hidden": 16, "optim.lr": 1e-3}})
    run_sweep(space, tmp_path / "runs")
    run_dir = tmp_path / "runs" / "custom"
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert len(board) == 2 and set(board.status) == {"TERMINATED"}, board[["status", "error"]]
    assert set(board.model_factory) == {"gru_model:build"}
    options = [json.loads(o) for o in board.model_options]
    assert all(o["word_dim"] == 16 and o["hidden"] in (16, 32) for o in options)
    assert board.model_d_model.isna().all() and board.model_heads.isna().all()  # keys the GRU never read
    assert board.best_t2v_R1.notna().all()
    confirm = pd.read_parquet(run_dir / "confirm.parquet")
    assert len(confirm) == 4 and set(confirm.status) == {"TERMINATED"}, confirm[["config_id", "error"]]
    assert json.loads((run_dir / "sweep.json").read_text())["status"] == "finished"

    assert main(["report", str(run_dir), "--out", str(tmp_path / "reports"), "--resamples", "200"]) == 0
    md = (tmp_path / "reports" / "custom" / "report.md").read_text()
    assert "model.options.hidden" in md and "## Confirmed result" in md
    assert "Model: gru_model:build" in md  # the report names the factory and its options
    dest = tmp_path / "champion"
    capsys.readouterr()
    assert main(["promote", str(run_dir), "--to", str(dest), "--device", "cpu", "--no-wandb"]) == 0
    said = capsys.readouterr().out
    assert "confirmed: " in said and "over 2 vs 2 seeds, 2 signers as clusters" in said
    manifest = json.loads((dest / "promoted.json").read_text())
    assert manifest["stage"] == "confirmation" and manifest["verification"]["eval_split"] == "test"
    # Promote imported gru_model to re-evaluate; forget it: eval finds it through the folder the checkpoint records.
    sys.modules.pop("gru_model")
    sys.path.remove(str(tmp_path / "mymodels"))
    assert main(["eval", "--ckpt", str(dest / "vlp_best_full.pt"), "--split", "test", "--device", "cpu"]) == 0
    assert "reproduces the numbers promoted.json recorded" in capsys.readouterr().out
    sys.modules.pop("gru_model", None)


@pytest.mark.slow
def test_a_failed_confirmation_fails_the_run_and_promote_refuses(sweep_data: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # The model raises only in the confirmation stage's seeds: the search finishes, every confirmation run fails.
    (tmp_path / "mymodels").mkdir()
    code = (EXAMPLE / "gru_model.py").read_text() + (
        "\n\n_build = build\n\n\ndef build(dims, **options):\n    import torch\n\n"
        "    if torch.initial_seed() in (11, 12):\n        raise RuntimeError('broken in confirmation')\n"
        "    return _build(dims, **options)\n")
    (tmp_path / "mymodels" / "gru_model.py").write_text(code)
    space = write_space(tmp_path / "space.yaml", custom_space(sweep_data, confirm={"top": 1, "seeds": [11, 12]}))
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", "run", str(space), "--runs-root", str(tmp_path / "runs")],
                         cwd=REPO, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: confirmation of c1 failed for seeds 11, 12: ")
    assert "broken in confirmation" in errors[0]
    run_dir = tmp_path / "runs" / "custom"
    meta = json.loads((run_dir / "sweep.json").read_text())
    assert meta["status"] == "failed" and meta["failed_stage"] == "confirmation"
    assert main(["status", str(run_dir)]) == 0
    shown = capsys.readouterr().out
    assert "failed in the confirmation stage" in shown and "CONFIRMATION FAILED c1 seed 11" in shown
    assert main(["promote", str(run_dir), "--to", str(tmp_path / "champ"), "--no-wandb", "--device", "cpu"]) == 2
    assert "its confirmation stage failed (c1 seed 11" in capsys.readouterr().err
    assert main(["promote", str(run_dir), "--to", str(tmp_path / "champ"), "--no-wandb", "--device", "cpu",
                 "--search-winner"]) == 0
    assert "its numbers are selection numbers" in capsys.readouterr().out
    assert json.loads((tmp_path / "champ" / "promoted.json").read_text())["stage"] == "search"
    sys.modules.pop("gru_model", None)

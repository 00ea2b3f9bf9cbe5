"""Sweep fixtures: a small synthetic dataset and a helper to write a space YAML next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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


def write_space(path: Path, space: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path

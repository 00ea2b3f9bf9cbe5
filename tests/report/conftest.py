"""A small real sweep folder built without Ray: the trainer's ``fit`` on a tiny synthetic corpus, each
evaluation fed to the Leaderboard the way the Ray callback feeds it (``start``/``result``/``checkpoint``/
``finish``/``write``), the checkpoint recorded as a copy of the evaluation's file, and a sweep.json as the
driver writes it. A copy of the tables is taken mid-run (one trial finished, one errored, one running).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

NAME = "small"
# (trial id, sampled params); "t3" errors before its first evaluation.
# t0's lr is so low that it cannot learn in 4 short epochs: it stays the worst whatever the data's seed.
TRIALS = (("t0", {"optim.lr": 1e-6, "loss.hard_negatives": "none"}),
          ("t3", {"optim.lr": 5e-3, "loss.hard_negatives": "topk"}),
          ("t1", {"optim.lr": 3e-3, "loss.hard_negatives": "none"}),
          ("t2", {"optim.lr": 3e-3, "loss.hard_negatives": "topk"}))
ERROR = "RuntimeError: simulated failure in the data loader"


def space(data: Path) -> dict[str, Any]:
    return {
        "name": NAME,
        "base": {"data.path": str(data), "data.max_frames": 16, "run.device": "cpu",
                 "model": {"d_model": 32, "heads": 2, "video_layers": 1, "text_layers": 1, "embed_dim": 32},
                 "optim": {"batch_size": 16, "epochs": 4}},
        "search": {"optim.lr": {"loguniform": [1e-6, 5e-3]},
                   "loss.hard_negatives": {"choice": ["none", "topk"]}},
        "search_alg": {"type": "optuna", "seed": 0, "n_startup_trials": 2},
        "scheduler": {"type": "none"}, "metric": "t2v_R1", "num_samples": 4, "max_concurrent": 1,
        "resources": {"cpu": 2, "gpu": 0}, "wandb": {"mode": "disabled"},
        "baseline": {"name": "slow lr", "config": {"optim.lr": 1e-6, "loss.hard_negatives": "none"}},
        "targets": {"good": {"t2v_R1": 10.0, "t2v_R5": 30.0}, "excellent": {"t2v_R1": 90.0}},
    }


@dataclass
class SmallSweep:
    run_dir: Path
    snapshot: Path
    data: Path


def write_sweep_json(run_dir: Path, spec: Any, status: str) -> None:
    """What driver.write_sweep_file writes (without Ray)."""
    from vlp_sweep import __version__

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = {"name": run_dir.name, "fingerprint": spec.fingerprint(), "spec": spec.to_dict(),
           "storage": str(run_dir.parent), "experiment_path": str(run_dir), "status": status,
           "tool_version": __version__, "created": now, "updated": now}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "sweep.json").write_text(json.dumps(doc, indent=2, default=str))


def _take_snapshot(run_dir: Path, snapshot: Path) -> None:
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in ("leaderboard.parquet", "sweep.json"):
        shutil.copy(run_dir / name, snapshot / name)
    shutil.copytree(run_dir / "history", snapshot / "history")  # the parts as they stood (ranks stay in run_dir)


def build_sweep(root: Path, data: Path) -> SmallSweep:
    from vlp_sweep.config import make_config
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.tables.leaderboard import Leaderboard
    from vlp_sweep.sweep.tables.ranks import write_epoch
    from vlp_sweep.sweep.trial import resolve_trial_config
    from vlp_sweep.train.trainer import Evaluation, fit

    spec = parse_space(space(data))
    run_dir, snapshot = root / "runs" / NAME, root / "snapshot" / NAME
    write_sweep_json(run_dir, spec, "running")
    lb = Leaderboard(run_dir, NAME, spec.metric, spec.mode, spec.epochs_range()[1])
    for tid, params in TRIALS:
        cfg = resolve_trial_config(spec, params, root)
        trial_dir = run_dir / f"trial_{tid}"
        lb.start(tid, cfg.flat(), params, trial_dir=str(trial_dir))
        lb.write()
        if tid == "t3":
            lb.finish(tid, error=f"Traceback (most recent call last):\n  ...\n{ERROR}")
            lb.write()
            continue
        cfg = make_config(cfg.to_dict(), {"run.out_dir": str(root / "scratch" / tid)})

        def report(ev: Evaluation, tid: str = tid, trial_dir: Path = trial_dir) -> None:
            assert ev.checkpoint is not None
            kept = trial_dir / f"checkpoint_{ev.epoch - 1:06d}" / "full.pt"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ev.checkpoint, kept)
            write_epoch(str(trial_dir), NAME, tid, ev.epoch, ev.t2v_ranks, ev.v2t_ranks)  # as the trial does
            lb.result(tid, {"epoch": ev.epoch, "step": ev.step, **ev.metrics, **ev.health,
                            "checkpoint_sha256": ev.checkpoint_sha256, "node_id": "local"})
            lb.checkpoint(tid, ev.epoch, str(kept))
            lb.write()
            if tid == "t1" and ev.epoch == 1:
                _take_snapshot(run_dir, snapshot)

        fit(cfg, report, health=spec.health)
        lb.finish(tid)
        lb.write()
    write_sweep_json(run_dir, spec, "finished")
    shutil.rmtree(root / "scratch", ignore_errors=True)
    return SmallSweep(run_dir, snapshot, data)


def get_small_sweep(tmp_path_factory: pytest.TempPathFactory) -> SmallSweep:
    """Build the sweep once per test session (under the session's base temp folder), whichever test
    module asks first: tests/test_promote.py uses it too."""
    from vlp_sweep.data.synth import synthesize

    root = tmp_path_factory.getbasetemp() / "small-sweep"
    done = root / "built"
    if not done.is_file():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        synthesize(root / "data", train=64, dev=40, test=8, signers=4, heldout_signers=1, lexicon=30,
                   siglip_dim=8)
        build_sweep(root, root / "data")
        done.write_text("ok")
    return SmallSweep(root / "runs" / NAME, root / "snapshot" / NAME, root / "data")


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> SmallSweep:
    """Three trained trials (4 short epochs each, a few seconds on two cores) and one errored trial."""
    return get_small_sweep(tmp_path_factory)


def clone_sweep(src: Path, dst: Path, **row_updates: dict[str, Any]) -> Path:
    """Copy a sweep folder (checkpoints included), re-pointing checkpoint paths into the copy;
    ``row_updates`` maps a trial id to leaderboard column values to overwrite."""
    from vlp_sweep.sweep.tables.leaderboard import LEADERBOARD_SCHEMA

    shutil.copytree(src, dst)
    rows = pq.read_table(dst / "leaderboard.parquet").to_pylist()
    for r in rows:
        for col in ("checkpoint_path", "trial_dir"):
            if r.get(col):
                r[col] = r[col].replace(str(src), str(dst))
        r.update(row_updates.get(r["trial_id"], {}))
    pq.write_table(pa.Table.from_pylist(rows, schema=LEADERBOARD_SCHEMA), dst / "leaderboard.parquet")
    return dst


# ---------------------------------------------------------------- a sweep written without training


@dataclass
class Fake:
    """One trial of a fabricated sweep: its sampled params and its t2v_R1 at each evaluated epoch."""

    trial_id: str
    params: dict[str, Any]
    values: dict[int, float]
    end: str = "finish"  # finish (TERMINATED or STOPPED by its epochs) | error | running


def fake_space(data: Path, **changes: Any) -> dict[str, Any]:
    """ASHA with grace 2 and factor 2 over 6 epochs: rungs at epochs 2 and 4, the full budget at 6."""
    return {"name": "fake", "base": {"data.path": str(data), "optim.epochs": 6},
            "search": {"optim.warmup_steps": {"choice": [0, 20]},
                       "loss.hard_negatives": {"choice": ["none", "hcl"]},
                       "loss.hcl_beta": {"uniform": [0.1, 1.0], "when": {"loss.hard_negatives": "hcl"}}},
            "search_alg": {"type": "optuna", "seed": 0},
            "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2},
            "metric": "t2v_R1", "num_samples": 8, "wandb": {"mode": "disabled"},
            "baseline": {"name": "plan", "metrics": {"t2v_R1": 19.65, "t2v_R5": 47.78}, "run": True,
                         "config": {"model.dropout": 0.4}},
            "targets": {"good": {"t2v_R1": 10.0}}, **changes}


def fake_sweep(run_dir: Path, space_dict: dict[str, Any], trials: list[Fake],
               extra: dict[str, Any] | None = None) -> Path:
    """A finished sweep folder whose tables hold exactly ``trials`` (no ranks: nothing was evaluated);
    ``extra`` is merged into sweep.json (e.g. ``datasets``)."""
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.tables.leaderboard import Leaderboard
    from vlp_sweep.sweep.trial import resolve_trial_config

    spec = parse_space(space_dict)
    write_sweep_json(run_dir, spec, "finished")
    if extra:
        doc = json.loads((run_dir / "sweep.json").read_text())
        (run_dir / "sweep.json").write_text(json.dumps({**doc, **extra}))
    lb = Leaderboard(run_dir, run_dir.name, spec.metric, spec.mode, spec.epochs_range()[1])
    for t in trials:
        lb.start(t.trial_id, resolve_trial_config(spec, t.params, run_dir).flat(), t.params)
        for epoch, v in sorted(t.values.items()):
            lb.result(t.trial_id, {"epoch": epoch, "t2v_R1": v, "t2v_R5": min(100.0, 3 * v), "rsum": 4 * v})
        if t.end != "running":
            lb.finish(t.trial_id, error="ValueError: boom" if t.end == "error" else None)
    lb.write()
    return run_dir

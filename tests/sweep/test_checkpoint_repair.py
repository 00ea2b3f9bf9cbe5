"""A snapshot that names a deleted checkpoint (a driver killed between Ray's retention and its next snapshot):
the restored trial starts over instead of failing (sweep/callbacks.py CheckpointRepair)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ray.train._internal.checkpoint_manager import _CheckpointManager
from ray.train._internal.session import _TrainingResult
from ray.tune import Checkpoint, CheckpointConfig
from ray.tune.trainable.metadata import _TrainingRunMetadata

from vlp_sweep.sweep.callbacks import CheckpointRepair, forget_missing_checkpoint


def _trial(folder: Path, status: str = "RUNNING") -> Any:
    """A trial as Ray restores it: its checkpoint manager names checkpoint_000000 as the latest."""
    meta = _TrainingRunMetadata()
    meta.checkpoint_manager = _CheckpointManager(CheckpointConfig(num_to_keep=1))
    ckpt = folder / "checkpoint_000000"
    ckpt.mkdir(parents=True)
    (ckpt / "full.pt").write_bytes(b"weights")
    meta.checkpoint_manager.register_checkpoint(_TrainingResult(Checkpoint(str(ckpt)), {"epoch": 1}))
    return SimpleNamespace(trial_id=folder.name, status=status, run_metadata=meta)


def test_a_trial_whose_named_checkpoint_is_gone_forgets_it_and_one_whose_checkpoint_is_there_keeps_it(
        tmp_path: Path) -> None:
    gone, kept = _trial(tmp_path / "a"), _trial(tmp_path / "b")
    shutil.rmtree(tmp_path / "a" / "checkpoint_000000")  # retention deleted it after a newer one came
    (tmp_path / "a" / "checkpoint_000001").mkdir()  # the newer one, maybe half-copied: not trusted
    assert forget_missing_checkpoint(gone) and gone.run_metadata.checkpoint_manager.latest_checkpoint_result is None
    assert gone.run_metadata.checkpoint_manager.checkpoint_config.num_to_keep == 1  # the same retention
    assert not forget_missing_checkpoint(kept)
    assert kept.run_metadata.checkpoint_manager.latest_checkpoint_result.checkpoint.path.endswith("checkpoint_000000")


def test_the_callback_repairs_once_before_any_trial_starts_and_leaves_finished_trials_alone(tmp_path: Path) -> None:
    running, finished = _trial(tmp_path / "a"), _trial(tmp_path / "b", status="TERMINATED")
    for t in (running, finished):
        shutil.rmtree(tmp_path / t.trial_id / "checkpoint_000000")
    repair = CheckpointRepair()
    repair.on_step_begin(0, [running, finished])
    assert running.run_metadata.checkpoint_manager.latest_checkpoint_result is None
    assert finished.run_metadata.checkpoint_manager.latest_checkpoint_result is not None  # its result stays
    later = _trial(tmp_path / "c")
    shutil.rmtree(tmp_path / "c" / "checkpoint_000000")
    repair.on_step_begin(1, [later])  # only the first step: a checkpoint deleted later is Ray's own business
    assert later.run_metadata.checkpoint_manager.latest_checkpoint_result is not None

"""The sweep's W&B logger: one offline run per trial from a driver thread; Tune's loop never waits for W&B."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sweep.wandb_offline import history
from vlp_sweep.sweep.wandb_logger import WandbLogger, split_result


class FakeTrial:
    def __init__(self, trial_id: str, tmp: Path):
        self.trial_id, self.config, self.local_path = trial_id, {"optim.lr": 0.002}, str(tmp / trial_id)

    def __str__(self) -> str:
        return f"trial_main_{self.trial_id}"


def _result(epoch: int) -> dict[str, Any]:
    return {"epoch": epoch, "t2v_R1": 10.0 * epoch, "training_iteration": epoch, "t2v_ranks": [1, 2, 3],
            "checkpoint_sha256": "ab", "trial_id": "aaaa0001", "done": False, "config": {"optim.lr": 0.002},
            "nested": {"x": 1.5}}


def test_split_result_logs_numbers_and_moves_ids_to_the_config() -> None:
    logged, config = split_result(_result(2), {"t2v_ranks"})
    assert logged == {"epoch": 2, "t2v_R1": 20.0, "training_iteration": 2, "nested/x": 1.5}
    assert config == {"trial_id": "aaaa0001"}


def test_runs_are_written_per_trial(tmp_path: Path) -> None:
    made = WandbLogger(project="p", group="g", mode="offline", dir=str(tmp_path), excludes=["t2v_ranks"])
    made._put(("noop", "x", None))  # a running thread and a queue with locks: Tune still pickles it (tuner.pkl)
    cb = pickle.loads(pickle.dumps(made))
    made.on_experiment_end([])
    a, b = FakeTrial("aaaa0001", tmp_path), FakeTrial("bbbb0002", tmp_path)
    cb.log_trial_start(a)
    cb.log_trial_start(b)
    for epoch in (1, 2):
        cb.log_trial_result(epoch, a, _result(epoch))
        cb.log_trial_result(epoch, b, _result(epoch) | {"t2v_R1": -1.0})
    cb.log_trial_end(a)
    cb.log_trial_end(b, failed=True)
    cb.on_experiment_end([a, b])
    assert not cb.errors

    def runs() -> dict[str, list[dict[str, Any]]]:
        files = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
        return {f.parent.name.split("-")[-1]: history(f) for f in files}

    # W&B's service process may still be writing the offline files when finish() returns.
    deadline = time.time() + 30
    while sum(len(rows) for rows in runs().values()) < 4 and time.time() < deadline:
        time.sleep(0.5)
    got = runs()
    assert set(got) == {"aaaa0001", "bbbb0002"}
    assert [r["t2v_R1"] for r in got["aaaa0001"]] == [10.0, 20.0]
    assert [r["t2v_R1"] for r in got["bbbb0002"]] == [-1.0, -1.0]
    assert all("t2v_ranks" not in r for rows in got.values() for r in rows)


def test_results_never_wait_for_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wandb

    class SlowRun:
        def log(self, *a: Any, **k: Any) -> None:
            time.sleep(0.5)

        def finish(self, *a: Any, **k: Any) -> None:
            pass

    def slow_init(**kwargs: Any) -> SlowRun:
        time.sleep(2.0)  # a W&B start on a busy machine
        return SlowRun()

    monkeypatch.setattr(wandb, "init", slow_init)
    cb = WandbLogger(project="p", group="g", mode="offline", dir=str(tmp_path))
    t = FakeTrial("cccc0003", tmp_path)
    t0 = time.perf_counter()
    cb.log_trial_start(t)
    for epoch in range(1, 6):
        cb.log_trial_result(epoch, t, _result(epoch))
    cb.log_trial_end(t)
    assert time.perf_counter() - t0 < 0.5  # 2 s of init and 2.5 s of logging happen in the thread
    cb.on_experiment_end([t])
    assert cb.thread is not None and not cb.thread.is_alive()


"""A full disk or a read-only runs/ while the leaderboard is written: one line naming the file, the
sweep stops, and the last complete leaderboard stays."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.sweep.conftest import tiny_space, write_space
from vlp_sweep.cli import main
from vlp_sweep.errors import UserError
from vlp_sweep.space import parse_space
from vlp_sweep.sweep import callbacks
from vlp_sweep.sweep.callbacks import LeaderboardCallback
from vlp_sweep.sweep.tables.leaderboard import read_table
from vlp_sweep.sweep.trial import TrialContext

REAL_WRITE = pq.write_table


def _full_disk(*args: Any, **kw: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _trial(tid: str, epoch: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(trial_id=tid, config={"run.seed": 0}, last_result={"epoch": epoch} if epoch else {},
                           error_file=None)


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS])
def test_failed_write_is_one_line_and_keeps_the_last_complete_table(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int) -> None:
    spec = parse_space(tiny_space(tmp_path / "data"))
    run_dir = tmp_path / "runs" / "s"
    monkeypatch.setattr(callbacks, "MIN_WRITE_INTERVAL_S", 0.0)  # every event writes
    cb = LeaderboardCallback(str(run_dir), "s", "t2v_R1", "max", 2, TrialContext(spec, str(tmp_path)))
    trials = [_trial("a"), _trial("b")]
    cb.on_trial_start(0, trials, trials[0])
    cb.on_trial_start(0, trials, trials[1])
    cb.on_step_end(0, trials)
    before = read_table(run_dir / "leaderboard.parquet")

    def broken(*args: Any, **kw: Any) -> None:
        raise OSError(err, errno.errorcode[err] if err != errno.ENOSPC else "No space left on device")

    monkeypatch.setattr(pq, "write_table", broken)
    cb.on_trial_result(0, trials, trials[0], {"epoch": 1, "t2v_R1": 50.0, "elapsed_s": 1.0})  # never raises
    cb.on_trial_complete(0, trials, trials[0])  # (Tune would mark the trial failed, and tell the searcher)
    with pytest.raises(UserError) as e:
        cb.on_step_end(0, trials)  # the write, from Tune's loop
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cannot write ") and str(run_dir / "leaderboard.parquet") in msg
    cb.on_experiment_end(trials)  # Tune's cleanup after the error: no second failure
    after = read_table(run_dir / "leaderboard.parquet")
    assert after.equals(before) and set(after.status) == {"RUNNING"}
    assert sorted(p.name for p in run_dir.iterdir()) == ["leaderboard.parquet"]  # no evaluation written yet


@pytest.mark.slow
def test_sweep_stops_on_a_full_disk_with_one_line(sweep_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # The disk fills up once a trial has reported an epoch (the driver's callbacks run in this process).
    def write_until_results(table: Any, where: Any, **kw: Any) -> None:
        if any(e for e in table.column("epochs").to_pylist() if e) if "epochs" in table.column_names else False:
            _full_disk()
        REAL_WRITE(table, where, **kw)

    monkeypatch.setattr(pq, "write_table", write_until_results)
    space = tiny_space(sweep_data, num_samples=2, max_concurrent=2)
    path = write_space(tmp_path / "space.yaml", space)
    runs = tmp_path / "runs"
    code = main(["run", str(path), "--name", "full", "--runs-root", str(runs)])
    err = capsys.readouterr().err.strip().splitlines()
    board_path = runs / "full" / "leaderboard.parquet"
    assert code == 2
    assert err[-1] == f"error: cannot write {board_path}: No space left on device", err
    assert not any("Traceback" in ln for ln in err)
    meta = json.loads((runs / "full" / "sweep.json").read_text())
    assert meta["status"] == "failed" and "No space left on device" in meta["reason"]
    board = pd.read_parquet(board_path)  # the last complete table: trials started, no epoch yet
    assert len(board) >= 1 and board.epochs.isna().all()

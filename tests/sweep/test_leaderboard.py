"""The leaderboard's bookkeeping: a trial's best and last kept per trial, the history appended and reopened."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vlp_sweep.sweep.tables.leaderboard import Leaderboard, read_history, read_table


def board(tmp_path: Path) -> Leaderboard:
    return Leaderboard(tmp_path, "s", "t2v_R1", "max", 6)


def test_a_restarted_trial_replaces_its_later_evaluations(tmp_path: Path) -> None:
    lb = board(tmp_path)
    lb.start("a", {}, {})
    for epoch, r1 in ((1, 5.0), (2, 30.0), (3, 10.0)):
        lb.result("a", {"epoch": epoch, "t2v_R1": r1})
        lb.checkpoint("a", epoch, f"/ck/{epoch}/full.pt")
    lb.write()
    # Ray restored it from its epoch-1 checkpoint (a retry, a resume after kill -9): epochs 2 and 3 again.
    for epoch, r1 in ((2, 7.0), (3, 8.0)):
        lb.result("a", {"epoch": epoch, "t2v_R1": r1})
        lb.checkpoint("a", epoch, f"/ck2/{epoch}/full.pt")
    lb.write()
    hist = read_history(tmp_path)
    assert list(zip(hist.epoch, hist.t2v_R1)) == [(1, 5.0), (2, 7.0), (3, 8.0)]  # no row twice, the new ones
    row = read_table(tmp_path / "leaderboard.parquet").iloc[0]
    assert (row.best_epoch, row.best_t2v_R1, row.checkpoint_path) == (3, 8.0, "/ck2/3/full.pt")


def test_reopened_tables_continue_where_they_were(tmp_path: Path) -> None:
    lb = board(tmp_path)
    for tid, values in (("a", (5.0, 9.0, 7.0)), ("b", (4.0,))):
        lb.start(tid, {"optim.epochs": 6}, {}, trial_dir=f"/runs/s/trial_{tid}")
        for epoch, r1 in enumerate(values, 1):
            lb.result(tid, {"epoch": epoch, "t2v_R1": r1, "checkpoint_sha256": f"sha{epoch}"})
            lb.checkpoint(tid, epoch, f"/ck/{tid}/{epoch}/full.pt")
    lb.finish("b")
    lb.write()
    again = Leaderboard.load(tmp_path, "s", "t2v_R1", "max", 6)
    assert again.damaged is None and set(again.rows) == {"a", "b"}
    a = again.trials["a"]
    assert a.best is not None and a.last is not None and (a.best["epoch"], a.last["epoch"]) == (2, 3)
    again.result("a", {"epoch": 4, "t2v_R1": 8.0})  # not better than epoch 2
    again.write()
    row = read_table(tmp_path / "leaderboard.parquet").set_index("trial_id").loc["a"]
    assert (row.best_epoch, row.epochs, row.checkpoint_path, row.checkpoint_sha256) == (2, 4, "/ck/a/2/full.pt", "sha2")
    assert row.trial_dir == "/runs/s/trial_a"
    assert list(read_history(tmp_path).query("trial_id == 'a'").epoch) == [1, 2, 3, 4]


def test_a_damaged_leaderboard_is_noted_not_fatal(tmp_path: Path) -> None:
    lb = board(tmp_path)
    lb.start("a", {}, {})
    lb.result("a", {"epoch": 1, "t2v_R1": 5.0})
    lb.write()
    path = tmp_path / "leaderboard.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    again = Leaderboard.load(tmp_path, "s", "t2v_R1", "max", 6)
    assert again.damaged is not None and again.rows == {}  # the callback rebuilds the rows (test_damaged.py)
    assert again.trials["a"].best is not None  # the history is intact


def test_pruned_trials_leave_the_history(tmp_path: Path) -> None:
    lb = board(tmp_path)
    for tid in ("keep", "gone"):
        lb.start(tid, {}, {})
        lb.result(tid, {"epoch": 1, "t2v_R1": 1.0})
    lb.write()
    again = Leaderboard.load(tmp_path, "s", "t2v_R1", "max", 6)
    again.prune({"keep"})
    again.write()
    assert set(read_history(tmp_path).trial_id) == {"keep"}
    assert list(pd.read_parquet(tmp_path / "leaderboard.parquet").trial_id) == ["keep"]


def test_an_earlier_versions_single_files_are_read_and_the_history_converted(tmp_path: Path) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from vlp_sweep.sweep.tables.results import load_sweep

    lb = board(tmp_path)
    lb.start("a", {}, {})
    lb.result("a", {"epoch": 1, "t2v_R1": 5.0})
    lb.write()
    # What an earlier version left: history.parquet and ranks.parquet, each one file.
    old = read_history(tmp_path).drop(columns=["eval_s", "reported_at"])
    (tmp_path / "history").unlink()
    __import__("shutil").rmtree(tmp_path / ".parts")
    old.to_parquet(tmp_path / "history.parquet")
    ranks = pa.table({"sweep": ["s", "s"], "trial_id": ["a", "a"], "epoch": [1, 1], "direction": ["t2v", "v2t"],
                      "ranks": [[1, 2], [2, 1]]})
    pq.write_table(ranks, tmp_path / "ranks.parquet")
    (tmp_path / "sweep.json").write_text(json.dumps({"name": "s", "status": "finished", "spec": {}}))
    sweep = load_sweep(tmp_path)
    assert list(sweep.history.epoch) == [1] and list(sweep.ranks_of("a", 1)["v2t"]) == [2, 1]
    again = Leaderboard.load(tmp_path, "s", "t2v_R1", "max", 6)  # a resume
    again.result("a", {"epoch": 2, "t2v_R1": 6.0})
    again.write()
    assert not (tmp_path / "history.parquet").exists()
    hist = read_history(tmp_path)
    assert list(hist.epoch) == [1, 2] and hist.eval_s.isna().all()

"""The sweep driver with real Ray Tune: end to end, failures, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.ray_procs import alive, stop_processes, tree
from tests.sweep.conftest import REPO, tiny_space, wait_for, write_space
from tests.sweep.live_readers import LiveReaders
from tests.sweep.wandb_offline import history
from vlp_sweep.cli import main
from vlp_sweep.sweep.tables.leaderboard import LEADERBOARD_SCHEMA, read_table

slow = pytest.mark.slow


def _vlp(args: list[str], cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vlp_sweep", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kw)


@slow
def test_sweep_end_to_end_with_a_failing_trial_wandb_and_live_readers(sweep_data: Path, tmp_path: Path) -> None:
    # A grid over two learning rates: the second blows the weights up, so its first steps give a NaN loss
    # (only training finds that), and that trial must fail and be recorded.
    space = tiny_space(sweep_data, search={"optim.lr": {"grid": [2e-3, 1e30]}},
                       search_alg={"type": "grid"}, num_samples=1, wandb={"mode": "offline", "project": "t"})
    path = write_space(tmp_path / "space.yaml", space)
    run_dir = tmp_path / "runs" / "e2e"
    # Users polling the leaderboard, the history and the ranks during the sweep with pandas, polars and
    # DuckDB (README "Leaderboard files") must never see a broken table or a row twice.
    with LiveReaders(run_dir) as readers:
        code = main(["run", str(path), "--name", "e2e", "--runs-root", str(tmp_path / "runs")])
    assert code == 0
    assert not readers.failures, readers.failures[:3]
    assert set(readers.reads) == {"leaderboard", "history pandas", "history polars", "history duckdb",
                                  "ranks pandas", "ranks polars", "ranks duckdb"}, readers.reads
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert list(board.columns) == LEADERBOARD_SCHEMA.names
    assert len(board) == 2
    ok = board[board.optim_lr == 2e-3].iloc[0]
    bad = board[board.optim_lr == 1e30].iloc[0]
    assert ok.status == "TERMINATED" and ok.epochs == 2 and ok.best_epoch in (1, 2)
    assert Path(ok.checkpoint_path).is_file() and len(ok.checkpoint_sha256) == 64
    assert bad.status == "ERROR" and "nan" in bad.error
    hist = pd.read_parquet(run_dir / "history")
    assert sorted(hist[hist.trial_id == ok.trial_id].epoch) == [1, 2]
    assert ok.best_t2v_R1 == hist[hist.trial_id == ok.trial_id].t2v_R1.max()
    # where each evaluation's time went, next to epoch_s
    assert (hist[hist.trial_id == ok.trial_id][["epoch_s", "eval_s", "checkpoint_s", "report_s", "setup_s"]]
            .notna().all().all())
    # per-query ranks: in the trial's own folder, one file per evaluation, never in Ray's results
    assert Path(ok.trial_dir).parent == run_dir
    for epoch in (1, 2):
        ranks = pd.read_parquet(Path(ok.trial_dir) / "ranks" / f"epoch-{epoch:06d}.parquet")
        assert list(ranks.direction) == ["t2v", "v2t"] and {len(r) for r in ranks.ranks} == {48}
    assert "t2v_ranks" not in (Path(ok.trial_dir) / "result.json").read_text()
    # the trainer's health checklist reached the leaderboard and the history through Ray
    assert ok.health_inputs == "pass" and ok.health_finite == "pass" and ok.fed_kpts_dim > 0
    assert ok.micro_batch > 0 and ok.oom_rescues == 0 and ok.health in ("pass", "warn")
    assert hist[hist.trial_id == ok.trial_id].health.notna().all()
    # The plain InfoNCE (comparable across hard-negative modes) reaches history, leaderboard and W&B.
    ok_hist = hist[hist.trial_id == ok.trial_id]
    assert ok_hist[["infonce", "eval_infonce"]].notna().all().all()
    assert ok.last_eval_infonce == ok_hist.sort_values("epoch").eval_infonce.iloc[-1]

    def logged() -> list[dict[str, object]]:
        return [r for f in (run_dir / "wandb").glob("offline-run-*/run-*.wandb") for r in history(f)]

    # W&B's service process may still be writing the offline file when the sweep returns.
    assert wait_for(lambda: {r["epoch"] for r in logged() if "t2v_R1" in r} == {1, 2}, 30), logged()
    assert any(r.get("t2v_R1") == ok.best_t2v_R1 for r in logged())
    assert any(r.get("eval_infonce") == ok.last_eval_infonce for r in logged())



@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@slow
def test_resume_after_sigkill_finishes_every_trial_exactly_once(sweep_data: Path, tmp_path: Path,
                                                                outside_survives: None) -> None:
    # With a baseline trial: the restored searcher must not hand it out again.
    space = tiny_space(sweep_data, num_samples=3, max_concurrent=1,
                       baseline={"run": True, "config": {"model.dropout": 0.4}})
    space["base"]["optim"]["epochs"] = 3
    path = write_space(tmp_path / "space.yaml", space)
    args = ["run", str(path), "--name", "killed", "--runs-root", str(tmp_path / "runs")]
    run_dir = tmp_path / "runs" / "killed"
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"}
    proc = _vlp(args, REPO, env=env)

    def one_done_one_running() -> bool:
        p = run_dir / "leaderboard.parquet"
        if not p.exists():
            return False
        b = read_table(p)  # one open file: the driver may be replacing it
        return (b.status == "TERMINATED").sum() >= 1 and (b.status == "RUNNING").any() and b.epochs.max() >= 1

    assert wait_for(one_done_one_running, 240), proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
    before = read_table(run_dir / "leaderboard.parquet")
    done_before = set(before[before.status == "TERMINATED"].trial_id)
    local_ray = tree(proc.pid)  # the driver and the local Ray it started: GCS, raylet, workers
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stop_processes(alive(local_ray))  # what outlived its driver; never `ray stop` (every Ray on the machine)
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args, "--resume"], cwd=REPO, text=True,
                         capture_output=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    after = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert len(after) == 4 and after.trial_id.is_unique
    assert after.params.str.contains("__baseline__").sum() == 1
    assert (after[after.params.str.contains("__baseline__")].model_dropout == 0.4).all()
    assert set(after.status) <= {"TERMINATED", "STOPPED"}
    assert done_before <= set(after.trial_id)  # finished trials kept, not rerun under new ids
    hist = pd.read_parquet(run_dir / "history")
    assert not hist.duplicated(["trial_id", "epoch"]).any()
    assert set(hist.trial_id) == set(after.trial_id)


def test_resume_with_a_changed_space_is_refused(sweep_data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.driver import SweepOptions, write_sweep_file

    spec = parse_space(tiny_space(sweep_data))
    (tmp_path / "runs" / "s").mkdir(parents=True)
    write_sweep_file(tmp_path / "runs" / "s", spec, "s", str(tmp_path / "runs"), "running")
    changed = tiny_space(sweep_data, num_samples=5)
    path = write_space(tmp_path / "space.yaml", changed)
    assert main(["run", str(path), "--name", "s", "--resume", "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "changed search space" in err and "num_samples" in err
    assert SweepOptions  # imported for its side-effect-free use above
    # A saved space that this version no longer accepts still gets the refusal, not its parse error.
    saved = json.loads((tmp_path / "runs" / "s" / "sweep.json").read_text())
    saved["spec"]["search"]["model.heads"] = {"grid": [2, 3]}
    (tmp_path / "runs" / "s" / "sweep.json").write_text(json.dumps(saved))
    assert main(["run", str(path), "--name", "s", "--resume", "--runs-root", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "changed search space" in err and "no longer validates" in err and len(err.strip().splitlines()) == 1


def test_a_sweep_saved_by_an_earlier_version_with_log_100_resumes(sweep_data: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.driver import write_sweep_file

    space = tiny_space(sweep_data, search={"loss.temperature": {"choice": [0.07, "log(100)"]}})
    run_dir = tmp_path / "runs" / "s"
    run_dir.mkdir(parents=True)
    write_sweep_file(run_dir, parse_space(space), "s", str(tmp_path / "runs"), "interrupted")
    # An earlier version saved the value as written, and a fingerprint of that form.
    saved = json.loads((run_dir / "sweep.json").read_text())
    assert saved["spec"]["search"]["loss.temperature"] == {"choice": [0.07, 0.01]}
    saved["spec"]["search"]["loss.temperature"] = {"choice": [0.07, "log(100)"]}
    saved["fingerprint"] = "of the space as an earlier version wrote it"
    (run_dir / "sweep.json").write_text(json.dumps(saved))
    path = write_space(tmp_path / "space.yaml", space)
    args = ["run", str(path), "--name", "s", "--resume", "--dry-run", "--runs-root", str(tmp_path / "runs")]
    assert main(args) == 0, capsys.readouterr().err
    saved["spec"]["search"]["loss.temperature"] = {"choice": [0.07, "log(50)"]}  # another space: refused
    (run_dir / "sweep.json").write_text(json.dumps(saved))
    assert main(args) == 2 and "changed search space" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--name", "../evil"], "plain folder name"),
    (["--name", "a/b"], "plain folder name"),
    (["--name", "nothing-here", "--resume"], "no sweep to resume"),
    (["--max-concurrent", "0"], "--max-concurrent"),
])
def test_bad_run_arguments_exit_2_with_one_line(sweep_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                args: list[str], message: str) -> None:
    path = write_space(tmp_path / "space.yaml", tiny_space(sweep_data))
    assert main(["run", str(path), "--runs-root", str(tmp_path / "runs"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_data_is_refused_before_ray_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_space(tmp_path / "space.yaml", tiny_space(tmp_path / "no-such-data"))
    assert main(["run", str(path), "--runs-root", str(tmp_path / "runs")]) == 2
    assert "no-such-data" in capsys.readouterr().err


@slow
def test_gpu_asked_where_none_exists_is_a_clear_error(sweep_data: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = write_space(tmp_path / "space.yaml", tiny_space(sweep_data, resources={"cpu": 1, "gpu": 0.5}))
    t0 = time.time()
    assert main(["run", str(path), "--runs-root", str(tmp_path / "runs")]) == 2
    assert "no GPU" in capsys.readouterr().err
    assert time.time() - t0 < 120


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@slow
def test_data_parallel_trial_runs_on_two_processes_with_ray_train(sweep_data: Path, tmp_path: Path) -> None:
    space = tiny_space(sweep_data, num_samples=1, max_concurrent=1, resources={"cpu": 0.5, "gpu": 0, "workers": 2})
    path = write_space(tmp_path / "space.yaml", space)
    assert main(["run", str(path), "--name", "ddp", "--runs-root", str(tmp_path / "runs")]) == 0
    board = pd.read_parquet(tmp_path / "runs" / "ddp" / "leaderboard.parquet")
    row = board.iloc[0]
    assert row.status == "TERMINATED" and row.epochs == 2
    assert Path(row.checkpoint_path).is_file()
    hist = pd.read_parquet(tmp_path / "runs" / "ddp" / "history")
    assert sorted(hist.epoch) == [1, 2]

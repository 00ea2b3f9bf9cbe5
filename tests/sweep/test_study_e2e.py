"""Real sweeps on Ray Tune: what the Optuna study in runs/NAME/optuna.journal holds against the leaderboard."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from tests.sweep.conftest import REPO, tiny_space, wait_for, write_space
from vlp_sweep.cli import main
from vlp_sweep.sweep.journal import TUNE_ID_ATTR, open_storage
from vlp_sweep.sweep.tables.leaderboard import read_table

slow = pytest.mark.slow
STATE_OF = {"STOPPED": TrialState.PRUNED, "TERMINATED": TrialState.COMPLETE, "ERROR": TrialState.FAIL}


def _study(run_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=run_dir.name, storage=open_storage(run_dir / "optuna.journal"))


def _held_by(study: optuna.Study) -> dict[str, optuna.trial.FrozenTrial]:
    """Tune trial id -> its Optuna trial (a rerun after a kill stands for the lost trial it replaced)."""
    out = {t.user_attrs[TUNE_ID_ATTR]: t for t in study.trials}
    for new, old in study.user_attrs.get("reruns", {}).items():
        if old in out:  # a running trial handed over carries the new id itself
            out.setdefault(new, out[old])
    return out


def _check_against_leaderboard(run_dir: Path) -> pd.DataFrame:
    """Every searched leaderboard row has one Optuna trial with the matching state, values and params."""
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    hist = pd.read_parquet(run_dir / "history")
    study = _study(run_dir)
    held = _held_by(study)
    searched = board[~board.params.str.contains("__baseline__")]
    assert len(study.trials) == len(searched)  # one told trial per Tune trial, the baseline not among them
    assert set(searched.trial_id) <= set(held)
    assert all(t.state.is_finished() for t in study.trials)
    for row in searched.itertuples():
        t = held[row.trial_id]
        curve = hist[hist.trial_id == row.trial_id].set_index("epoch").t2v_R1.to_dict()
        assert t.state == STATE_OF[row.status], (row.trial_id, row.status, t.state)
        if row.status == "TERMINATED":
            assert t.value == row.best_t2v_R1 and t.intermediate_values == curve
        if row.status == "STOPPED":
            assert t.intermediate_values == curve and t.value == curve[max(curve)] == row.last_t2v_R1
    return board


@slow
def test_asha_stopped_trials_are_pruned_finished_complete_errors_fail(sweep_data: Path, tmp_path: Path) -> None:
    # One learning rate in three blows the weights up: those trials fail with a NaN loss (validation cannot
    # see that coming, as it sees a NaN in the data). Copies of the data make more configurations.
    paths = [shutil.copytree(sweep_data, tmp_path / f"good{i}") for i in range(3)]
    search = {"optim.lr": {"choice": [1e-5, 3e-3, 1e30]}, "data.path": {"choice": list(map(str, paths))}}
    space = tiny_space(sweep_data, num_samples=8, max_concurrent=2, search=search,
                       search_alg={"type": "optuna", "seed": 3, "n_startup_trials": 8},
                       scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2},
                       baseline={"run": True, "config": {"model.dropout": 0.4, "data.path": str(sweep_data)}})
    del space["base"]["data.path"]
    space["base"]["optim"]["epochs"] = 4
    path = write_space(tmp_path / "space.yaml", space)
    assert main(["run", str(path), "--name", "asha", "--runs-root", str(tmp_path / "runs")]) == 0
    board = _check_against_leaderboard(tmp_path / "runs" / "asha")
    assert {"STOPPED", "TERMINATED", "ERROR"} <= set(board.status), board.status.tolist()
    assert _study(tmp_path / "runs" / "asha").direction == optuna.study.StudyDirection.MAXIMIZE


@slow
def test_grid_sweep_gets_a_journal_too(sweep_data: Path, tmp_path: Path) -> None:
    space = tiny_space(sweep_data, search={"loss.hard_negatives": {"grid": ["none", "topk"]}},
                       search_alg={"type": "grid"}, num_samples=1)
    path = write_space(tmp_path / "space.yaml", space)
    assert main(["run", str(path), "--name", "grid", "--runs-root", str(tmp_path / "runs")]) == 0
    board = _check_against_leaderboard(tmp_path / "runs" / "grid")
    assert set(board.status) == {"TERMINATED"} and len(board) == 2
    params = sorted(t.params["loss.hard_negatives"] for t in _study(tmp_path / "runs" / "grid").trials)
    assert params == ["none", "topk"]


@slow
def test_seeds_repeat_each_suggestion_and_optuna_sees_their_means(sweep_data: Path, tmp_path: Path) -> None:
    space = tiny_space(sweep_data, seeds=[0, 1], num_samples=2, max_concurrent=2)
    path = write_space(tmp_path / "space.yaml", space)
    assert main(["run", str(path), "--name", "seeds", "--runs-root", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "seeds"
    board = pd.read_parquet(run_dir / "leaderboard.parquet")
    hist = pd.read_parquet(run_dir / "history")
    study = _study(run_dir)
    assert len(board) == 4 and len(study.trials) == 2 and set(board.status) == {"TERMINATED"}
    for t in study.trials:  # the primary trial of each group of seeds carries the group's numbers
        group = board[board.group_id == board.set_index("trial_id").group_id[t.user_attrs[TUNE_ID_ATTR]]]
        assert sorted(group.seed) == [0, 1]
        mean_curve = hist[hist.trial_id.isin(group.trial_id)].groupby("epoch").t2v_R1.mean().to_dict()
        assert t.state == TrialState.COMPLETE and t.value == pytest.approx(group.group_mean_t2v_R1.iloc[0])
        assert t.intermediate_values == pytest.approx(mean_curve)



def _end_processes_mentioning(folder: str) -> None:
    """The killed driver's own Ray (started under its RAY_TMPDIR): end those processes by pid."""
    import psutil

    procs = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid != os.getpid() and folder in " ".join(p.info["cmdline"] or []):
            procs.append(p)
    for p in procs:
        p.kill()
    psutil.wait_procs(procs, timeout=30)


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@slow
def test_resume_after_sigkill_continues_the_same_study(sweep_data: Path, tmp_path: Path) -> None:
    # Ray snapshots the experiment rarely here (an hour; a trial's 5 checkpoints), so the trials that
    # started after the first snapshot are lost with the kill and re-created under new ids.
    space = tiny_space(sweep_data, num_samples=4, max_concurrent=1, keep_checkpoints=5,
                       baseline={"run": True, "config": {"model.dropout": 0.4}})
    # Trials of a few seconds: the leaderboard is written at most once a second, the state waited for must last.
    space["base"]["optim"] = {"epochs": 5, "batch_size": 8}
    space["base"]["model"].update(d_model=96, embed_dim=96, video_layers=2)
    path = write_space(tmp_path / "space.yaml", space)
    args = ["run", str(path), "--name", "killed", "--runs-root", str(tmp_path / "runs")]
    run_dir = tmp_path / "runs" / "killed"
    ray_tmp = tempfile.mkdtemp(prefix="/tmp/vr")  # Unix socket paths must stay under 108 bytes
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "3600", "RAY_TMPDIR": ray_tmp,
           "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", *args], cwd=REPO, text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)

    def searched_trial_running() -> bool:
        p = run_dir / "leaderboard.parquet"
        if not p.exists():
            return False
        b = read_table(p)
        searched = b[~b.params.str.contains("__baseline__")]
        return (searched.status == "TERMINATED").sum() >= 1 and (searched.status == "RUNNING").any()

    try:
        assert wait_for(searched_trial_running, 300), proc.communicate(timeout=5)[0] if proc.poll() else ""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        _end_processes_mentioning(ray_tmp)
    before = _study(run_dir)
    assert any(t.state == TrialState.RUNNING for t in before.trials)  # the kill left a trial half-told
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args, "--resume"], cwd=REPO, text=True,
                         capture_output=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    board = _check_against_leaderboard(run_dir)
    assert len(board) == 5 and board.trial_id.is_unique and set(board.status) == {"TERMINATED"}
    after = _study(run_dir)
    told_before = {t.number: t for t in before.trials if t.state.is_finished()}
    for n, t in told_before.items():  # what was told before the kill stays as it was
        assert after.trials[n].state == t.state and after.trials[n].value == t.value
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_resume_with_a_damaged_journal_is_refused_and_nothing_is_overwritten(
        sweep_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.space import parse_space
    from vlp_sweep.sweep.driver import write_sweep_file

    space = tiny_space(sweep_data)
    run_dir = tmp_path / "runs" / "s"
    run_dir.mkdir(parents=True)
    write_sweep_file(run_dir, parse_space(space), "s", str(tmp_path / "runs"), "interrupted")
    path = write_space(tmp_path / "space.yaml", space)
    journal = run_dir / "optuna.journal"
    for content in (b'{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}\n{"op_code": 4',
                    b"this is not a journal\n"):
        journal.write_bytes(content)
        sweep_json = (run_dir / "sweep.json").read_bytes()
        assert main(["run", str(path), "--name", "s", "--resume", "--runs-root", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err.strip()
        assert "optuna.journal cannot be continued" in err and len(err.splitlines()) == 1
        assert journal.read_bytes() == content and (run_dir / "sweep.json").read_bytes() == sweep_json
        assert sorted(p.name for p in run_dir.iterdir()) == ["optuna.journal", "sweep.json"]

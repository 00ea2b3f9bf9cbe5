"""`vlp-sweep dashboard`: optuna-dashboard over the sweep's journal, checked in a real (headless) browser."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.sweep.conftest import REPO
from vlp_sweep.cli import main
from vlp_sweep.sweep.journal import TUNE_ID_ATTR, open_storage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _sweep(tmp_path: Path, name: str = "dash-sweep") -> Path:
    """A sweep folder whose journal holds a few told trials (as the searcher writes them)."""
    run_dir = tmp_path / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "sweep.json").write_text(json.dumps({"name": name, "status": "finished"}))
    study = optuna.create_study(study_name=name, storage=open_storage(run_dir / "optuna.journal"),
                                direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(3):
        t = study.ask()
        lr = t.suggest_float("optim.lr", 1e-4, 3e-3, log=True)
        t.set_user_attr(TUNE_ID_ATTR, f"tune{i:03d}")
        for epoch in (1, 2):
            t.report(1000 * lr * epoch, epoch)
        study.tell(t, state=optuna.trial.TrialState.PRUNED if i == 1 else optuna.trial.TrialState.COMPLETE,
                   values=None if i == 1 else 2000 * lr)
    return run_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dom(url: str) -> str:
    assert CHROMIUM
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          "--virtual-time-budget=15000", url], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium to load the page (Debian: apt-get install chromium)")
def test_dashboard_shows_the_sweeps_study_and_trials_in_a_browser(tmp_path: Path) -> None:
    run_dir = _sweep(tmp_path)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "dashboard", str(run_dir), "--port", str(port)],
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the socket is bound
        assert f"http://127.0.0.1:{port}/dashboard/studies/0" in line and "dash-sweep" in line, line
        overview = _dom(f"http://127.0.0.1:{port}/dashboard/studies/0")
        assert "dash-sweep" in overview and "Pruned" in overview and "Complete" in overview
        trials = _dom(f"http://127.0.0.1:{port}/dashboard/studies/0/trials")
        assert all(f"Trial {i}" in trials for i in range(3)) and "tune000" in trials
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and "dashboard stopped" in rest and "Traceback" not in rest


def test_dashboard_refuses_a_folder_that_is_not_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").mkdir()
    for target in (tmp_path / "plain", tmp_path / "missing"):
        assert main(["dashboard", str(target)]) == 2
        err = capsys.readouterr().err.strip()
        assert "not a sweep folder" in err and len(err.splitlines()) == 1


def test_dashboard_refuses_a_sweep_without_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _sweep(tmp_path)
    (run_dir / "optuna.journal").unlink()
    assert main(["dashboard", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no Optuna study" in err and len(err.splitlines()) == 1


def test_dashboard_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _sweep(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        t0 = time.time()
        assert main(["dashboard", str(run_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"127.0.0.1:{port}: in use" in err and len(err.splitlines()) == 1 and time.time() - t0 < 30


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium to load the page (Debian: apt-get install chromium)")
def test_the_dashboard_names_the_objective_after_the_sweeps_metric(tmp_path: Path) -> None:
    from vlp_sweep.sweep.journal import StudyLog

    run_dir = tmp_path / "runs" / "named"
    run_dir.mkdir(parents=True)
    (run_dir / "sweep.json").write_text(json.dumps({"name": "named", "status": "finished"}))
    log = StudyLog(run_dir / "optuna.journal", "named", "max", optuna.samplers.RandomSampler(seed=0), metric="t2v_R1")
    for i in range(2):  # as the searcher records them
        t = log.study.ask()
        log.remember(f"tune{i}", t)
        log.study.tell(t, 1000 * t.suggest_float("optim.lr", 1e-4, 3e-3, log=True))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vlp_sweep", "dashboard", str(run_dir), "--port", str(port)],
                            cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None and "named" in proc.stdout.readline()
        overview = _dom(f"http://127.0.0.1:{port}/dashboard/studies/0")
        assert "t2v_R1" in overview and "Objective 0" not in overview
    finally:
        proc.terminate()
        proc.communicate(timeout=30)

"""One driver per sweep: the lock names its holder, dies with it (kill -9), and status reports it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sweep.conftest import REPO, tiny_space, write_space
from vlp_sweep.cli import main
from vlp_sweep.errors import UserError
from vlp_sweep.sweep.lifecycle.lock import LOCK_FILE, SweepLock, driver_alive

HOLD = """
import sys, time
from vlp_sweep.sweep.lifecycle.lock import SweepLock
lock = SweepLock(sys.argv[1]); lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A process of our own that holds the lock of tmp_path/runs/s, as a running driver would."""
    run_dir = tmp_path / "runs" / "s"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield run_dir, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_lock_is_refused_naming_pid_and_host(holder) -> None:  # type: ignore[no-untyped-def]
    run_dir, proc = holder
    with pytest.raises(UserError) as e:
        SweepLock(run_dir).acquire()
    msg = str(e.value)
    assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "\n" not in msg
    info = driver_alive(run_dir)
    assert info is not None and info.pid == proc.pid


def test_lock_is_free_after_kill_9(holder) -> None:  # type: ignore[no-untyped-def]
    run_dir, proc = holder
    assert driver_alive(run_dir) is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / LOCK_FILE).exists()  # the file stays; the kernel freed the lock
    assert driver_alive(run_dir) is None
    with SweepLock(run_dir):
        assert driver_alive(run_dir) is None or driver_alive(run_dir).pid == os.getpid()  # type: ignore[union-attr]


def test_lock_released_on_exit_and_unused_folder_removed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "fresh"
    with SweepLock(run_dir):
        assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert not run_dir.exists()  # nothing else was written: no folder left behind
    run_dir.mkdir(parents=True)
    (run_dir / "sweep.json").write_text("{}")
    with SweepLock(run_dir):
        pass
    assert (run_dir / "sweep.json").exists() and driver_alive(run_dir) is None


@pytest.mark.parametrize("resume", [False, True])
def test_run_and_resume_are_refused_while_a_driver_runs(holder, sweep_data: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        capsys: pytest.CaptureFixture[str], resume: bool) -> None:
    run_dir, proc = holder
    (run_dir / "sweep.json").write_text(json.dumps({"name": "s", "status": "running", "spec": {}}))
    space = write_space(tmp_path / "space.yaml", tiny_space(sweep_data))
    t0 = time.time()
    code = main(["run", str(space), "--name", "s", "--runs-root", str(tmp_path / "runs"),
                 *(["--resume"] if resume else [])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "already running" in err and f"pid {proc.pid}" in err and socket.gethostname() in err
    assert time.time() - t0 < 30  # refused before Ray starts


def test_status_tells_whether_the_driver_is_alive(holder, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    run_dir, proc = holder
    (run_dir / "sweep.json").write_text(json.dumps({"name": "s", "status": "running", "spec": {}}))
    assert main(["status", str(run_dir)]) == 0
    assert f"driver: alive, pid {proc.pid}" in capsys.readouterr().out
    proc.kill()
    proc.wait()
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "driver: not running" in out and "without recording" in out

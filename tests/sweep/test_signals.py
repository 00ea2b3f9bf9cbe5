"""Ctrl-C and SIGTERM: the first stops the sweep cleanly and resumably, the second at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.sweep.conftest import REPO, tiny_space, wait_for, write_space
from vlp_sweep.sweep.lifecycle.outcome import run_and_record
from vlp_sweep.sweep.lifecycle.signals import Interrupted, StopOnSignal
from vlp_sweep.sweep.tables.leaderboard import read_history, read_table

# A stand-in for the driver: Tune's handler on SIGUSR1 (as tune.run installs it), our StopOnSignal on
# SIGINT/SIGTERM; it waits for signals and says what happened.
FAKE_DRIVER = """
import os, signal, sys, time
from vlp_sweep.sweep.lifecycle.signals import StopOnSignal
out = sys.argv[1]
stop = StopOnSignal(on_force=lambda s: open(out, "a").write(f"forced {s}\\n"),
                    on_stop=lambda s: open(out, "a").write(f"status {s}\\n"))
stop.install()
signal.signal(signal.SIGUSR1, lambda s, f: open(out, "a").write("tune stop\\n"))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_asks_tune_to_stop_second_exits_at_once(tmp_path: Path, sig: int) -> None:
    log = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, "-c", FAKE_DRIVER, str(log)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    time.sleep(1.0)
    assert proc.poll() is None  # still running: stopping cleanly is Tune's job now
    assert log.read_text() == f"status {sig}\ntune stop\n"  # the status first: the clean stop may not finish
    t0 = time.time()
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 128 + sig
    assert time.time() - t0 < 5
    assert log.read_text() == f"status {sig}\ntune stop\nforced {sig}\n"
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "quit at once" in err


def test_signal_before_tune_runs_raises_interrupted_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    stop = StopOnSignal(say=lambda line: None)
    with pytest.raises(Interrupted), stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)  # the handler runs between bytecodes of this thread
    assert stop.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is before


def test_outcome_is_finished_interrupted_or_failed_with_reason(tmp_path: Path) -> None:
    marks: list[tuple[str, str | None]] = []

    def mark(status: str, reason: str | None = None) -> None:
        marks.append((status, reason))

    stop = StopOnSignal()
    assert run_and_record(lambda: None, stop, tmp_path, mark, started=lambda: True) == "finished"
    stop.signum = signal.SIGTERM  # as the handler sets it
    assert run_and_record(lambda: None, stop, tmp_path, mark, started=lambda: True) == "interrupted"

    def crash() -> None:
        raise RuntimeError("the driver broke\nsecond line")

    with pytest.raises(RuntimeError):
        run_and_record(crash, StopOnSignal(), tmp_path, mark, started=lambda: True)
    assert marks == [("finished", None), ("interrupted", None), ("failed", "RuntimeError: the driver broke")]
    with pytest.raises(RuntimeError):  # before sweep.json exists: nothing is written
        run_and_record(crash, StopOnSignal(), tmp_path, mark, started=lambda: False)
    assert len(marks) == 3


def _assert_quiet(out: str) -> None:
    """No library log lines in the output (they are in driver.log); progress lines whole (no TTY here)."""
    for noise in ("core_worker", "_WandbLoggingActor", "wandb:", "INFO", "WARNING", "(raylet)", "Tune",
                  "Using an existing study"):
        assert noise not in out, out
    events = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert events and all(re.search(r"\| (start [0-9a-f]{8}|done [0-9a-f]{8} at epoch \d+)$", ln)
                          for ln in events), out



@pytest.mark.slow
@pytest.mark.parametrize("sig, group", [pytest.param(signal.SIGINT, True, id="ctrl-c"),
                                        pytest.param(signal.SIGTERM, False, id="sigterm", marks=pytest.mark.heavy)])
def test_signal_stops_the_sweep_cleanly_and_resume_finishes_each_trial_once(
        sweep_data: Path, tmp_path: Path, sig: int, group: bool, outside_survives: None) -> None:
    # Ctrl-C with W&B on: none of W&B's lines may reach the output.
    wandb = {"mode": "offline", "project": "t"} if group else {"mode": "disabled"}
    space = tiny_space(sweep_data, num_samples=3, max_concurrent=2, wandb=wandb)
    space["base"]["optim"]["epochs"] = 3
    path = write_space(tmp_path / "space.yaml", space)
    runs = tmp_path / "runs"
    run_dir = runs / "sig"
    args = [sys.executable, "-m", "vlp_sweep", "run", str(path), "--name", "sig", "--runs-root", str(runs)]
    # Our own session: a terminal's Ctrl-C reaches the whole foreground process group, which we mimic
    # with killpg on this group only.
    proc = subprocess.Popen(args, cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        def trained_an_epoch() -> bool:
            return len(read_history(run_dir)) >= 1
        assert wait_for(trained_an_epoch, 240), proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
        assert proc.poll() is None
        (os.killpg if group else os.kill)(proc.pid, sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + sig, out
    assert "Traceback" not in out and "SIGTERM received" not in out
    assert f"--name sig --runs-root {runs} --resume" in out  # the one line that says how to resume
    meta = json.loads((run_dir / "sweep.json").read_text())
    assert meta["status"] == "interrupted"
    board = read_table(run_dir / "leaderboard.parquet")
    assert not set(board.status) & {"RUNNING", "PENDING"}
    assert "INTERRUPTED" in set(board.status)
    _assert_quiet(out)

    again = subprocess.run([*args, "--resume"], cwd=REPO, text=True, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    _assert_quiet(again.stdout + again.stderr)  # Optuna's INFO line on reopening the study included
    assert json.loads((run_dir / "sweep.json").read_text())["status"] == "finished"
    after = pd.read_parquet(run_dir / "leaderboard.parquet")
    assert len(after) == 3 and after.trial_id.is_unique
    assert set(after.status) == {"TERMINATED"} and set(after.epochs) == {3}
    hist = pd.read_parquet(run_dir / "history")
    assert not hist.duplicated(["trial_id", "epoch"]).any()
    assert sorted(hist.groupby("trial_id").epoch.max()) == [3, 3, 3]


def test_a_user_error_wrapped_by_tune_comes_out_as_itself(tmp_path: Path) -> None:
    from ray.tune.error import TuneError

    from vlp_sweep.errors import UserError

    marks: list[tuple[str, str | None]] = []

    def fit() -> None:  # what Tune does with an exception raised in a callback, then Tuner.fit on top
        try:
            try:
                raise UserError("cannot write runs/s/leaderboard.parquet: No space left on device")
            except Exception:
                raise TuneError("Traceback ...") from None  # noqa: B904 - Tune's own way
        except TuneError as e:
            raise TuneError("The Ray Tune run failed.") from e

    with pytest.raises(UserError, match="No space left") as e:
        run_and_record(fit, StopOnSignal(), tmp_path, lambda s, r=None: marks.append((s, r)), started=lambda: True)
    assert e.value.__cause__ is None
    assert marks == [("failed", "cannot write runs/s/leaderboard.parquet: No space left on device")]

"""Quiet output: library lines go to a log file, ours to the terminal; progress never splits a line."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from vlp_sweep.output import LiveLine, quiet_python

REPO = Path(__file__).resolve().parents[1]

LONG = "[  12s] 3/7 done  2 running  0 errored  best t2v_R1 38.33 (f61bc121)  | done f61bc121 at epoch 6" * 2


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_without_a_tty_is_one_whole_line_per_event() -> None:
    out = io.StringIO()
    line = LiveLine(out)
    line.update(LONG)
    line.update("short\n  event")
    line.event("ERROR abc: boom")
    assert out.getvalue() == f"{LONG}\nshort event\nERROR abc: boom\n"  # no wrapping, no \r


def test_progress_on_a_tty_is_one_live_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    out = _Tty()
    line = LiveLine(out)
    line.update(LONG)
    line.update("second")
    line.event("ERROR abc: boom")
    line.update("third")
    line.close()
    assert out.getvalue() == (f"\r{LONG[:39]}\x1b[K\rsecond\x1b[K\r\x1b[KERROR abc: boom\n\rthird\x1b[K\n")


QUIET_FDS = """
import os, subprocess, sys
from vlp_sweep.output import quiet_fds, terminal
with quiet_fds(sys.argv[1]):
    os.write(2, b"native noise on fd 2\\n")        # what Ray's C++ core worker does
    print("python noise on stdout", flush=True)
    sys.stderr.write("python noise on stderr\\n")
    subprocess.run(["sh", "-c", "echo child noise; echo child err >&2"])
    terminal().write("our own line\\n")
print("after: stdout is back")
"""


def test_quiet_fds_sends_every_library_line_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "runs" / "s" / "driver.log"
    res = subprocess.run([sys.executable, "-c", QUIET_FDS, str(log)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr == "our own line\n"
    assert res.stdout == "after: stdout is back\n"
    logged = log.read_text()
    for noise in ("native noise on fd 2", "python noise on stdout", "python noise on stderr", "child noise",
                  "child err"):
        assert noise in logged


def test_quiet_python_keeps_warnings_and_library_logs_off_the_terminal(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "out" / "train.log"
    with quiet_python(log):
        warnings.warn("enable_nested_tensor is True, but ...", UserWarning, stacklevel=1)
        logging.getLogger("optuna.study").warning("Using an existing study")
        print("epoch 1 ...")
    captured = capsys.readouterr()
    assert captured.out == "epoch 1 ...\n" and captured.err == ""
    assert "enable_nested_tensor" in log.read_text() and "existing study" in log.read_text()
    with warnings.catch_warnings(record=True) as seen:  # back to normal afterwards
        warnings.simplefilter("always")
        warnings.warn("shown", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["shown"]


def test_quiet_python_with_an_unwritable_log_stays_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with quiet_python(blocker / "sub" / "x.log"):  # its folder cannot be made
        logging.getLogger("wandb").error("no place for this")
    assert capsys.readouterr().err == ""


def test_train_keeps_pytorch_warnings_in_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from vlp_sweep.cli import main
    from vlp_sweep.train import trainer

    def fake_fit(cfg: object, report: object, **kw: object) -> SimpleNamespace:
        warnings.warn("enable_nested_tensor is True, but self.use_nested_tensor is False", UserWarning,
                      stacklevel=1)
        logging.getLogger("torch._dynamo").warning("recompiling")
        return SimpleNamespace(best_checkpoint=(1, 5.0))

    monkeypatch.setattr(trainer, "fit", fake_fit)
    out = tmp_path / "one"
    assert main(["train", "--set", "optim.lr=3e-3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "nested_tensor" not in err and "recompiling" not in err and "best epoch 1" in err
    assert "nested_tensor" in (out / "train.log").read_text() and "recompiling" in (out / "train.log").read_text()
    # --debug: warnings and log records go where Python and the library send them, no file. torch's own
    # handler holds whichever stderr it saw first (in a full suite, not capsys's), so a handler of ours
    # watches the record instead of the terminal.
    seen: list[str] = []
    watcher = logging.Handler()
    watcher.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("torch._dynamo").addHandler(watcher)
    try:
        with pytest.warns(UserWarning, match="nested_tensor"):  # Python's own warning machinery
            assert main(["--debug", "train", "--out", str(tmp_path / "two")]) == 0
    finally:
        logging.getLogger("torch._dynamo").removeHandler(watcher)
    assert "recompiling" in seen and not (tmp_path / "two" / "train.log").exists()

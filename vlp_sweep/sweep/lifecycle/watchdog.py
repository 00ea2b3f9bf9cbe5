"""What must end with the sweep driver, however it ends: a small process the driver starts beside itself.

A driver ended by ``kill -9`` (or by a second Ctrl-C, which exits at once) runs no more code: its GCS and
raylet die with it (Ray fate-shares them with the driver that started them), but Ray's dashboard and
runtime-env agents lived on for 20-70 s, and the leaderboard kept the rows of its running trials as RUNNING.
The watchdog (``python -m vlp_sweep.sweep.lifecycle.watchdog DRIVER_PID RUN_DIR [--kill]``, in a session of its own,
so the signals sent to the driver's process group do not reach it) reads a pipe whose other end only the
driver holds, and looks at the driver's process tree once a second (Linux ``/proc``), remembering every
descendant with its start time (a pid that is reused later is someone else's). When the pipe closes:

- after the line ``done`` (the driver ended in its own way: its Ray is shut down, its status written), it
  exits;
- without it, it sends SIGKILL to the remembered processes that are still alive (``--kill``: the driver's own
  local Ray; never a cluster's), then, holding the sweep's lock (no new driver has started), turns the
  leaderboard's RUNNING and PENDING rows into INTERRUPTED and a ``running`` sweep.json into ``interrupted``.
  ``--resume`` continues the sweep as after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["Watchdog"]

DONE = b"done\n"
POLL_S = 1.0


class Watchdog:
    """``with Watchdog(run_dir, kill=True):`` in the driver: starts the watchdog, and tells it ``done`` on the
    way out of the block (whatever ends it in Python). Without a watchdog (it could not start), a sweep runs
    as before."""

    def __init__(self, run_dir: Path, kill: bool) -> None:
        self.run_dir, self.kill = run_dir, kill
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Watchdog:
        args = [sys.executable, "-m", "vlp_sweep.sweep.lifecycle.watchdog", str(os.getpid()),
                str(self.run_dir.resolve())]
        with contextlib.suppress(OSError):
            self.proc = subprocess.Popen([*args, *(["--kill"] if self.kill else [])], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            self.proc.stdin.write(DONE)
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


# ---------------------------------------------------------------- the watchdog process


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, from /proc/PID/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()  # after the command name, which may hold spaces
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> dict[int, int]:
    """pid -> start time of every process below ``pid`` (empty where /proc is not there)."""
    procs: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
                procs[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(p)
    out, todo = {}, list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out[p] = procs[p][1]
        todo.extend(children.get(p, []))
    return out


def watch(pipe: IO[bytes], driver: int, run_dir: Path, kill: bool) -> bool:
    """Until the pipe closes; returns whether the driver said ``done``. Kills its leftovers when not."""
    seen: dict[int, int] = {}
    received = b""
    while True:
        ready, _, _ = select.select([pipe], [], [], POLL_S)
        if ready:
            chunk = os.read(pipe.fileno(), 64)
            if not chunk:
                break
            received += chunk
        seen.update(descendants(driver))
        seen.pop(os.getpid(), None)  # the watchdog is the driver's child too
    if DONE in received:
        return True
    if kill:
        for pid, started in seen.items():
            if (_stat(pid) or (0, -1))[1] == started:  # still the process we saw, not a reused pid
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    mark_interrupted(run_dir, driver)
    return False


def mark_interrupted(run_dir: Path, driver: int) -> None:
    """The driver ended without its clean stop: its open rows INTERRUPTED, a ``running`` status interrupted;
    only while no other driver holds the sweep (its lock)."""
    from vlp_sweep.atomic import write_text
    from vlp_sweep.sweep.lifecycle.lock import LOCK_FILE
    from vlp_sweep.sweep.tables.leaderboard import mark_interrupted as mark_rows

    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a resumed driver holds it: leave its sweep alone
    except OSError:
        os.close(fd)
        return
    try:
        with contextlib.suppress(Exception):
            mark_rows(run_dir)
        meta = _read_json(run_dir / "sweep.json")
        if meta.get("status") == "running":
            meta.update(status="interrupted", updated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        reason=f"the driver (pid {driver}) ended without stopping cleanly (killed)")
            with contextlib.suppress(OSError):
                write_text(run_dir / "sweep.json", json.dumps(meta, indent=2, default=str))
    finally:
        os.close(fd)  # the lock goes with the descriptor


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the pipe ends the watch
    driver, run_dir = int(argv[0]), Path(argv[1])
    watch(sys.stdin.buffer, driver, run_dir, kill="--kill" in argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

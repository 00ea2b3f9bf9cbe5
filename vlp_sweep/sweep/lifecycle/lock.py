"""One driver per sweep: an OS file lock on ``runs/NAME/driver.lock`` held while the driver runs.

``flock(2)`` belongs to the open file, so the kernel frees it when the driver exits in any way,
``kill -9`` included: no stale lock to clean up by hand. The file also records who holds it (pid,
host, start time) for the refusal message and ``vlp-sweep status``; that record is only read while
the lock is held, so a leftover file from a dead driver means nothing.

The lock is per host: ``flock`` on a network filesystem may not be seen by another machine, which is
one more reason a sweep has one driver machine.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from vlp_sweep.errors import UserError, write_error

__all__ = ["LOCK_FILE", "DriverInfo", "SweepLock", "driver_alive", "refuse_if_running"]

LOCK_FILE = "driver.lock"
_RETRIES = 5  # a `status` probing the lock holds it for microseconds: a starting driver retries briefly


@dataclass(frozen=True)
class DriverInfo:
    """The driver that holds a sweep's lock."""

    pid: int | None
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid if self.pid is not None else '?'} on host {self.host} (since {self.started})"


class SweepLock:
    """``with SweepLock(run_dir):`` holds the sweep's lock or raises :class:`UserError` naming the holder."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None
        self._made_dir = False

    def acquire(self) -> None:
        self._made_dir = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # os.open makes the descriptor non-inheritable (PEP 446): Ray's processes never hold the lock.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # read-only runs/, full disk
            raise write_error(self.path, e) from None
        for attempt in range(_RETRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN) or attempt == _RETRIES - 1:
                    os.close(fd)
                    raise UserError(_busy(self.run_dir, _read(self.path))) from None
                time.sleep(0.1)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        if self._made_dir and [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]:
            # The sweep never started (Ray could not start, say): leave no folder behind.
            self.path.unlink(missing_ok=True)
            self.run_dir.rmdir()
        os.close(self._fd)  # closing the only descriptor drops the lock
        self._fd = None

    def __enter__(self) -> SweepLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def driver_alive(run_dir: str | os.PathLike[str]) -> DriverInfo | None:
    """The driver holding the sweep's lock, or None when no driver runs (no lock file, or a free lock)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # granted only when no driver holds LOCK_EX
    except OSError:
        return _read(path)
    finally:
        os.close(fd)
    return None


def refuse_if_running(run_dir: str | os.PathLike[str]) -> None:
    """A UserError when a driver is running this sweep (checked before anything else is done)."""
    info = driver_alive(run_dir)
    if info is not None:
        raise UserError(_busy(Path(run_dir), info))


def _busy(run_dir: Path, info: DriverInfo) -> str:
    return (f"sweep {run_dir} is already running: its driver is {info.describe()}; "
            f"wait for it, or stop it (Ctrl-C or kill {info.pid or 'PID'}) before another run or --resume")


def _read(path: Path) -> DriverInfo:
    try:
        doc = json.loads(path.read_text())
        return DriverInfo(int(doc["pid"]), str(doc["host"]), str(doc["started"]))
    except (OSError, ValueError, KeyError, TypeError):  # being written this very moment
        return DriverInfo(None, "unknown", "unknown")

"""Ctrl-C and SIGTERM in the sweep driver: the first stops the sweep cleanly, the second at once.

Ray Tune stops an experiment cleanly when its own interrupt handler runs: the tuning loop ends, the
experiment state is saved, running trials are stopped (each keeps the checkpoint of its last
evaluation, which ``--resume`` continues from) and the callbacks' ``on_experiment_end`` writes the
final leaderboards. Tune installs that handler on SIGUSR1 always and on SIGINT unless
``TUNE_DISABLE_SIGINT_HANDLER`` is set (``ray/tune/tune.py``, ``_setup_signal_catching``). We set it,
own SIGINT and SIGTERM ourselves, and call Tune's handler (found on SIGUSR1) on the first signal, so
that:

- SIGTERM (a scheduler's preemption) stops as cleanly as Ctrl-C; left alone, Ray's own SIGTERM
  handler exits the driver mid-write with a native stack dump;
- we know which signal came (exit code 128 + signal: 130 for SIGINT, 143 for SIGTERM);
- a second signal exits at once (``os._exit``) after a best-effort "interrupted" status.

A signal before Tune runs (while Ray starts) raises :class:`Interrupted` in the main thread, as
Python's own KeyboardInterrupt would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["Interrupted", "StopOnSignal"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, which it stands in for
    """A stop signal arrived before Tune's loop was running; nothing to stop cleanly yet."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopOnSignal:
    """Owns SIGINT and SIGTERM while the driver runs (``with StopOnSignal(...) as stop:``).

    ``on_stop(signum)`` runs on the first signal, ``on_force(signum)`` before a second signal ends
    the process (write the status there); ``say(line)`` prints a line to the user.
    """

    def __init__(self, on_force: Callable[[int], None] | None = None,
                 say: Callable[[str], None] | None = None,
                 on_stop: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None
        self.on_force, self.on_stop = on_force, on_stop
        from vlp_sweep.output import say as say_on_terminal  # the real terminal, also while output is quiet

        self.say: Callable[[str], None] = say or say_on_terminal
        self._old: dict[int, Any] = {}

    @property
    def exit_code(self) -> int:
        """0 without a signal, else 128 + the first signal's number (the shell's convention)."""
        return 0 if self.signum is None else 128 + self.signum

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # Python delivers signals to the main thread only; a sweep run from a thread keeps Tune's
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # read by tune.run when it starts: SIGINT is ours
        for s in SIGNALS:
            self._old.setdefault(s, signal.getsignal(s))
            signal.signal(s, self._handle)
        # tune.run puts its handler on SIGUSR1 and leaves it there: clear one left by an earlier sweep
        # of this process, so that a handler found there is this sweep's.
        self._old.setdefault(signal.SIGUSR1, signal.getsignal(signal.SIGUSR1))
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old.clear()

    def __enter__(self) -> StopOnSignal:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            self._force()
        self.signum = signum
        name = signal.Signals(signum).name
        self.say(f"{name}: stopping the sweep; running trials keep their last checkpoint "
                 f"({'press Ctrl-C' if signum == signal.SIGINT else 'signal'} again to quit at once)")
        if self.on_stop is not None:
            # At once: a SIGTERM sent to the whole process group (a batch scheduler's preemption) also
            # ends Ray's own processes, and the driver may not live to finish the clean stop.
            with contextlib.suppress(Exception):
                self.on_stop(signum)
        tune_stop = signal.getsignal(signal.SIGUSR1)  # Tune's handler once tune.run has started
        if not callable(tune_stop):
            raise Interrupted(signum)
        tune_stop(signal.SIGUSR1, frame)

    def _force(self) -> None:
        assert self.signum is not None
        try:
            if self.on_force is not None:
                self.on_force(self.signum)
        finally:
            sys.stderr.flush()
            os._exit(128 + self.signum)

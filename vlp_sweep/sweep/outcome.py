"""How a sweep's run ended, recorded in ``sweep.json`` ``status`` (and ``reason``):

    running      a driver is at work (``vlp-sweep status`` tells whether it is still alive)
    finished     Tune's loop ended by itself: every trial ended (done, stopped early or errored)
    interrupted  Ctrl-C or SIGTERM stopped it; ``--resume`` continues the unfinished trials
    failed       the driver itself failed (``reason`` says why); ``--resume`` continues as well

Only ``finished`` says the sweep is complete: a status is written for what happened, never in a
``finally`` block that cannot tell a crash from the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from vlp_sweep.errors import UserError
from vlp_sweep.sweep.signals import Interrupted, StopOnSignal

__all__ = ["run_and_record", "failure_reason"]

Mark = Callable[[str, "str | None"], None]


def failure_reason(err: BaseException) -> str:
    """One line for ``sweep.json`` ``reason``."""
    text = str(err).strip().splitlines()
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {text[0] if text else ''}".strip()


def run_and_record(fit: Callable[[], object], stop: StopOnSignal, run_dir: Path, mark: Mark,
                   started: Callable[[], bool]) -> str:
    """Run ``fit`` (Ray start, Tune's fit, shutdown) and write how it ended; returns the status.

    ``started()`` says whether ``sweep.json`` exists yet: an error before that (Ray cannot start, no
    GPU) leaves nothing behind, as before the lock existed.
    """
    try:
        fit()
    except Interrupted:
        status = "interrupted"
    except BaseException as e:
        if started():
            _mark_quietly(mark, "failed", failure_reason(e))
        raise
    else:
        status = "interrupted" if stop.signum is not None else "finished"
    if started():
        if status == "interrupted":
            _close_board(run_dir)
        mark(status, None)
    return status


def _close_board(run_dir: Path) -> None:
    """Trials that were running when the sweep stopped are INTERRUPTED on the leaderboard, not RUNNING."""
    from vlp_sweep.sweep.leaderboard import mark_interrupted

    mark_interrupted(run_dir)


def _mark_quietly(mark: Mark, status: str, reason: str) -> None:
    # The failure may be the disk itself (read-only, full): the original error is the one to report.
    with contextlib.suppress(OSError, UserError):
        mark(status, reason)

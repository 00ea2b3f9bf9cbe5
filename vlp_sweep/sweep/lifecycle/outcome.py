"""How a sweep's run ended, recorded in ``sweep.json`` ``status`` (and ``reason``):

    running      a driver is at work (``vlp-sweep status`` tells whether it is still alive)
    finished     Tune's loop ended by itself: every trial ended (done, stopped early or errored)
    interrupted  Ctrl-C or SIGTERM stopped it; ``--resume`` continues the unfinished trials
    failed       the driver itself failed, or a stage ended with failed runs (``reason`` says why,
                 ``failed_stage`` which stage: "confirmation"); ``--resume`` continues as well

Only ``finished`` says the sweep is complete: a status is written for what happened, never in a
``finally`` block that cannot tell a crash from the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from vlp_sweep.errors import UserError
from vlp_sweep.sweep.lifecycle.signals import Interrupted, StopOnSignal

__all__ = ["StageFailed", "failure_reason", "run_and_record", "user_error_in"]

Mark = Callable[..., None]  # (status, reason=None, stage=None): writes sweep.json


class StageFailed(Exception):
    """A stage ended with failed runs (the confirmation stage): the sweep is not finished, its tables are
    written; ``lines`` says which configurations failed, one line each."""

    def __init__(self, stage: str, lines: tuple[str, ...]) -> None:
        super().__init__(f"the {stage} stage failed: {'; '.join(lines)}")
        self.stage, self.lines = stage, lines

    @property
    def reason(self) -> str:
        n = len(self.lines)
        first = f": {self.lines[0]}" if self.lines else ""
        return f"{n} configuration{'s' * (n != 1)} with failed runs{first}"


def failure_reason(err: BaseException) -> str:
    """One line for ``sweep.json`` ``reason``."""
    text = str(err).strip().splitlines()
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {text[0] if text else ''}".strip()


def user_error_in(err: BaseException) -> UserError | None:
    """The UserError behind ``err``: Tune wraps an exception raised in a callback (a leaderboard that
    cannot be written) in a TuneError that carries it only as the cause or context."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, UserError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


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
    except StageFailed as e:  # everything is written; the run is not finished
        if started():
            mark("failed", e.reason, e.stage)
        return "failed"
    except BaseException as e:
        user = user_error_in(e)
        if started():
            _mark_quietly(mark, "failed", failure_reason(user or e))
        if user is not None:
            raise user from None  # one line for the user, not Tune's wrapping of it
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
    from vlp_sweep.sweep.tables.leaderboard import mark_interrupted

    mark_interrupted(run_dir)


def _mark_quietly(mark: Mark, status: str, reason: str) -> None:
    # The failure may be the disk itself (read-only, full): the original error is the one to report.
    with contextlib.suppress(OSError, UserError):
        mark(status, reason)

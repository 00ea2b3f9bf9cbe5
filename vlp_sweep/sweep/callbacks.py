"""Ray Tune callbacks of the driver: the live Parquet leaderboard, the terminal progress line, and the repair
of a snapshot that names a deleted checkpoint (after a killed driver)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from vlp_sweep.errors import UserError
from vlp_sweep.output import live_line
from vlp_sweep.sweep.tables.leaderboard import Leaderboard, health_values
from vlp_sweep.sweep.trial import TrialContext, resolve_trial_config

MIN_WRITE_INTERVAL_S = 1.0


class LeaderboardCallback(Callback):
    """Feeds every trial event to :class:`Leaderboard` and writes the Parquet files.

    Rows are keyed by the experiment's own trial list (the ``trials`` argument Tune passes), never by
    scanning folders: after a resume, trials restarted under new ids replace their old rows, and rows
    that a killed driver left RUNNING take the status Ray restored (the trial's own, from Ray's snapshot).

    What an event costs does not grow with the sweep: the trial list is looked at only when it has grown,
    and an event only updates the tables in memory. They are written from Tune's loop (``on_step_end``,
    every step: at most a tenth of a second apart), at most once a second; whenever Tune snapshots the
    experiment (``get_state``, called while it saves: so the files are never behind what a resume restores);
    and when the experiment ends. A write that fails (full disk, read-only folder) raises a UserError naming
    the file out of Tune's loop, never out of a trial's event (Tune would mark that trial failed, and tell
    the searcher so): the sweep stops, and the previous complete files stay (atomic writes).
    """

    def __init__(self, run_dir: str, sweep: str, metric: str, mode: str, max_epochs: int, ctx: TrialContext):
        self.args = (run_dir, sweep, metric, mode, max_epochs)
        self.ctx = ctx
        self.board: Leaderboard | None = None
        self.last_write = 0.0
        self.write_failed = False
        self.seen = 0  # trials of Tune's list looked at so far (the list only grows)
        self.dirty = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A sweep started by an earlier version pickled this callback with its context as a dict holding
        # the spec as plain data: parsed once here, on resume.
        if isinstance(state.get("ctx"), dict):
            from vlp_sweep.space import parse_space

            old = state["ctx"]
            state["ctx"] = TrialContext(parse_space(old["spec"]), old["cwd"], tuple(old.get("import_paths", ())))
        state.setdefault("seen", 0)
        state.setdefault("dirty", False)
        self.__dict__.update(state)

    def setup(self, *args: Any, **info: Any) -> None:
        # Runs at the start of a fresh and of a restored experiment: reopen what was written before.
        self.board = Leaderboard.load(*self.args)
        self.seen, self.dirty = 0, False

    def _lb(self) -> Leaderboard:
        if self.board is None:
            self.setup()
        assert self.board is not None
        return self.board

    def _sync(self, trials: list[Any]) -> None:
        if len(trials) != self.seen:
            self._catch_up(trials)
        self.dirty = True

    def _catch_up(self, trials: list[Any]) -> None:
        """Rows for trials Tune added since the last look; on the first look after a (re)start, also the
        experiment's own list: rows of trials it no longer knows go, and rows take the status Ray restored."""
        lb = self._lb()
        if self.seen == 0:
            lb.prune({t.trial_id for t in trials})
            if lb.damaged:
                live_line().event(f"warning: {lb.dir / 'leaderboard.parquet'} was unreadable ({lb.damaged}): "
                                  "rebuilt from the trials' own results")
            for t in trials:
                self._restored(t, rebuild=lb.damaged is not None)
            lb.damaged = None
        for t in trials[self.seen:]:
            if t.trial_id not in lb.rows:
                self._start(t)
        self.seen = len(trials)

    def _restored(self, trial: Any, rebuild: bool) -> None:
        """A trial of a restored experiment: its row as Ray left it (rebuilt when the file was unreadable)."""
        lb = self._lb()
        row = lb.rows.get(trial.trial_id)
        if row is None or rebuild:
            self._start(trial)
            row = lb.rows[trial.trial_id]
            row.update({k: v for k, v in health_values(getattr(trial, "last_result", None) or {}).items()
                        if v is not None})  # the columns the history does not keep: Ray's last result has them
            row["status"] = "INTERRUPTED" if trial.trial_id in lb.trials else "PENDING"
        kept = lb.trials.get(trial.trial_id)
        if kept is not None and kept.last is not None and row.get("epochs") != kept.last["epoch"]:
            # The history is ahead of the row (a kill between the two writes, or a rebuilt row): the row follows
            # it, with the checkpoint Ray kept for the best epoch.
            _recover_checkpoint(lb, trial.trial_id, row.get("trial_dir"))
            lb.refresh(trial.trial_id)
        status = getattr(trial, "status", None)
        if status == "TERMINATED" and row["status"] in OPEN:
            lb.finish(trial.trial_id)
        elif status == "ERROR" and row["status"] != "ERROR":
            lb.finish(trial.trial_id, error=_trial_error(trial))

    def _write(self, force: bool) -> None:
        # At most once a second (fewer rewrites under readers' feet), at once when forced.
        if self.write_failed or not (force or (self.dirty and time.time() - self.last_write >= MIN_WRITE_INTERVAL_S)):
            return  # after a failed write the sweep is stopping for it: let the other callbacks finish
        try:
            self._lb().write()
        except UserError:  # full disk, read-only runs/ (write_table_atomic): stop the sweep
            self.write_failed = True
            raise
        self.last_write, self.dirty = time.time(), False

    def _start(self, trial: Any) -> None:
        spec = self.ctx.spec
        # Grid/param_space trials carry every key, inactive conditional ones too: record what applied.
        active, searched = spec.active_params(trial.config), {p.key for p in spec.search}
        params = {k: v for k, v in trial.config.items() if k in active or k not in searched}
        try:
            flat = resolve_trial_config(spec, params, self.ctx.cwd).flat()
        except Exception:  # an invalid sampled config still gets a row; the trial itself reports the error
            flat = {}
        self._lb().start(trial.trial_id, flat, params, trial_dir=self.ctx.trial_dir(getattr(trial, "path", None)))

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._start(trial)
        self._sync(trials)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        if "epoch" in result:
            self._lb().result(trial.trial_id, result)
            if result.get("checkpoint_path"):  # data-parallel trials: Ray Train persisted the checkpoint
                self._lb().checkpoint(trial.trial_id, int(result["epoch"]),
                                      str(Path(result["checkpoint_path"]) / "full.pt"))
        self._sync(trials)

    def on_checkpoint(self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any) -> None:
        epoch = (trial.last_result or {}).get("epoch")
        if epoch is not None and getattr(checkpoint, "path", None):
            self._lb().checkpoint(trial.trial_id, int(epoch), str(Path(checkpoint.path) / "full.pt"))
            self._sync(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._lb().finish(trial.trial_id)
        self._sync(trials)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._lb().finish(trial.trial_id, error=_trial_error(trial))
        self._sync(trials)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._write(force=False)

    def get_state(self) -> dict[str, Any] | None:
        """Tune snapshots the experiment: write what the snapshot will hold first (no state of our own)."""
        if self.dirty:
            self._write(force=True)
        return None

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._sync(trials)
        self._write(force=True)
        if not self.write_failed:
            self._lb().write_history(compact=True)  # the history in one part
        self._warn_missing()

    def _warn_missing(self) -> None:
        """Ray's retention follows the selection rule, so every named checkpoint should be on disk; say
        so loudly if one is not (a retention that disagrees with the leaderboard, or a file deleted by hand)."""
        import pandas as pd

        from vlp_sweep.sweep.tables.results import missing_checkpoints

        for tid, path in missing_checkpoints(pd.DataFrame(list(self._lb().rows.values()))):
            # live_line: the terminal, also while the driver's own output goes to driver.log
            live_line().event(f"warning: trial {tid}: the checkpoint the leaderboard names is missing: {path}")


OPEN = ("RUNNING", "PENDING", "INTERRUPTED")


def _recover_checkpoint(lb: Leaderboard, trial_id: str, trial_dir: str | None) -> None:
    """A rebuilt row's checkpoint: the one Ray kept for the trial's best epoch (its ``checkpoint.json``)."""
    from vlp_sweep.sweep.trial import CHECKPOINT_INFO

    t = lb.trials.get(trial_id)
    if not trial_dir or "://" in trial_dir or t is None or t.best is None or not Path(trial_dir).is_dir():
        return
    for info in sorted(Path(trial_dir).glob(f"checkpoint_*/{CHECKPOINT_INFO}")):
        try:
            saved = json.loads(info.read_text())
        except (OSError, ValueError):
            continue
        if saved.get("epoch") == t.best["epoch"]:
            t.ckpts[int(saved["epoch"])] = (str(info.parent / "full.pt"), str(saved.get("sha256") or ""))


def _trial_error(trial: Any) -> str:
    """The line of the trial's exception that names it (Ray keeps the full traceback in the trial folder)."""
    path = getattr(trial, "error_file", None)
    if not path or not Path(path).is_file():
        return "trial failed (no error file)"
    lines = [ln.strip() for ln in Path(path).read_text(errors="replace").splitlines() if ln.strip()]
    named = [ln for ln in lines if "Error" in ln or "Exception" in ln]
    return (named or lines or ["trial failed"])[-1]


class ProgressCallback(Callback):
    """Compact progress: done / running / errored, the best so far and the last event; a live line on a
    terminal, one whole line per event in a log (vlp_sweep.output.LiveLine); errors are kept as lines."""

    def __init__(self, metric: str, mode: str, total: int | None):
        self.metric, self.mode, self.total = metric, mode, total
        self.t0 = time.time()

    def _text(self, trials: list[Any], event: str) -> str:
        states = [t.status for t in trials]
        done = sum(s == "TERMINATED" for s in states)
        running = sum(s == "RUNNING" for s in states)
        errored = sum(s == "ERROR" for s in states)
        best, best_id = None, "-"
        for t in trials:
            v = (t.metric_analysis.get(self.metric) or {}).get(self.mode) if hasattr(t, "metric_analysis") else None
            if v is not None and (best is None or (v > best if self.mode == "max" else v < best)):
                best, best_id = v, t.trial_id
        total = f"/{self.total}" if self.total else ""
        best_s = f"best {self.metric} {best:.2f} ({best_id})" if best is not None else "best -"
        return (f"[{time.time() - self.t0:6.0f}s] {done}{total} done  {running} running  {errored} errored  "
                f"{best_s}  | {event}")

    def setup(self, *args: Any, **info: Any) -> None:
        self.t0 = time.time()  # a resumed sweep's clock starts now, not when the pickled callback was made

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        live_line().update(self._text(trials, f"start {trial.trial_id}"))

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        live_line().update(self._text(trials, f"done {trial.trial_id} at epoch "
                                              f"{(trial.last_result or {}).get('epoch')}"))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        live_line().event(self._text(trials, f"ERROR {trial.trial_id}: {_trial_error(trial)}"))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        live_line().close()


class CheckpointRepair(Callback):
    """After a resume: a trial whose last checkpoint, as Ray's snapshot names it, is gone starts over.

    Ray deletes a checkpoint its retention (``num_to_keep``) no longer keeps as soon as a newer one is
    registered, but saves the experiment's snapshot at most once per period. A driver killed in between
    (``kill -9``, a lost machine) leaves a snapshot naming a deleted checkpoint, and Ray fails the restored
    trial ("Could not recover from checkpoint as it does not exist on storage anymore"). The newer checkpoint
    on disk may be half-copied (the kill can come mid-copy), so the trial restarts from its first epoch
    instead: its seed makes the same run, and the tables take the repeated epochs as a rewind. Runs once,
    on the first step, before any restored trial is started."""

    def __init__(self) -> None:
        self.checked = False

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.checked:
            return
        self.checked = True
        for trial in trials:
            if trial.status != "TERMINATED" and forget_missing_checkpoint(trial):
                live_line().event(f"trial {trial.trial_id}: its last checkpoint was deleted after Ray's last "
                                  "snapshot (the driver was killed); it starts over")


def forget_missing_checkpoint(trial: Any) -> bool:
    """Drop ``trial``'s checkpoints when the latest one is no longer on storage; True when it did."""
    import pyarrow.fs
    from ray.train._internal.checkpoint_manager import _CheckpointManager  # Ray's own, as a fresh trial has

    manager = trial.run_metadata.checkpoint_manager
    latest = manager.latest_checkpoint_result if manager is not None else None
    if latest is None:
        return False
    ckpt = latest.checkpoint
    if ckpt.filesystem.get_file_info(ckpt.path).type != pyarrow.fs.FileType.NotFound:
        return False
    trial.run_metadata.checkpoint_manager = _CheckpointManager(checkpoint_config=manager.checkpoint_config)
    return True

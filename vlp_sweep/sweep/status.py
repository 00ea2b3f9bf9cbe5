"""`vlp-sweep status`: a sweep's leaderboard, its running trials with their health, and whether a driver
runs it now (the folder is read by ``results.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.sweep.tables.results import error_groups, missing_checkpoints, missing_confirmed, open_sweep, which


def print_status(run_dir: str | Path) -> None:
    from rich.console import Console
    from rich.table import Table

    meta, board = open_sweep(run_dir)
    spec = meta.get("spec", {})
    metric = spec.get("metric", "t2v_R1")
    console = Console(width=max(120, Console().width))
    counts = board["status"].value_counts().to_dict() if not board.empty else {}
    summary = "  ".join(f"{str(k).lower()} {v}" for k, v in sorted(counts.items(), key=str)) or "no trials yet"
    console.print(f"sweep [bold]{meta['name']}[/bold] ({meta.get('status')}): {len(board)} trials: {summary}")
    console.print(driver_line(run_dir, meta), highlight=False)
    if board.empty:
        return
    table = Table(show_lines=False)
    for col in ("trial", "status", "epochs", f"best {metric}", "t2v R@1", "R@5", "R@10", "MedR", "time s",
                "checkpoint", "health"):
        table.add_column(col, justify="right" if col not in ("trial", "status", "checkpoint", "health") else "left")
    missing = dict(missing_checkpoints(board))
    for _, r in board.head(10).iterrows():
        table.add_row(str(r.trial_id), str(r.status), _fmt(r.epochs, "d"), _fmt(r.get(f"best_{metric}")),
                      _fmt(r.best_t2v_R1), _fmt(r.best_t2v_R5), _fmt(r.best_t2v_R10), _fmt(r.best_t2v_MedR, "g"),
                      _fmt(r.time_s, ".0f"), _checkpoint_cell(r, missing), _health(r))
    console.print(table)
    running = board[board["status"] == "RUNNING"]
    if len(running):
        console.print(_running_table(running))
    _print_errors(console, board)
    for tid, path in missing.items():
        console.print(f"[yellow]MISSING CHECKPOINT[/yellow] {rich_escape(tid)}: {rich_escape(path)} (deleted or "
                      "moved since the sweep recorded it; promote skips this trial)", markup=True, highlight=False)
    confirm = _confirm_table(Path(run_dir))
    for line in missing_confirmed(confirm):
        console.print(f"[yellow]MISSING CHECKPOINT[/yellow] {rich_escape(line)}", markup=True, highlight=False)
    for line in confirm_failures(confirm):
        console.print(f"[red]CONFIRMATION FAILED[/red] {rich_escape(line)}", markup=True, highlight=False)


def _confirm_table(run_dir: Path) -> pd.DataFrame:
    """confirm.parquet, or an empty table where the stage has not run (or the file is damaged: ``report``
    names a damaged table; status has nothing to flag from it)."""
    from vlp_sweep.sweep.confirmation.confirm import CONFIRM_FILE
    from vlp_sweep.sweep.tables.leaderboard import read_table

    try:
        return read_table(run_dir / CONFIRM_FILE) if (run_dir / CONFIRM_FILE).is_file() else pd.DataFrame()
    except Exception:
        return pd.DataFrame()


def confirm_failures(confirm: pd.DataFrame) -> list[str]:
    """One line per failed run of the confirmation stage (a confirm.parquet table): configuration, seed, error."""
    return [f"{r['config_id']} seed {r['seed']}: {r['error']}" for _, r in confirm.iterrows()
            if r["status"] != "TERMINATED"]


MAX_ERROR_LINES = 10


def _print_errors(console: Any, board: pd.DataFrame) -> None:
    """One line per distinct error, the most frequent first (a big sweep's errors are a few kinds)."""
    errors = board[board["status"] == "ERROR"]
    groups = error_groups([(str(t), str(e)) for t, e in zip(errors["trial_id"], errors["error"])])
    for err, trials in groups[:MAX_ERROR_LINES]:
        who = trials[0] if len(trials) == 1 else f"x{len(trials)} ({which(trials)})"
        console.print(f"[red]ERROR[/red] {rich_escape(who)}: {rich_escape(err)}", markup=True, highlight=False)
    if len(groups) > MAX_ERROR_LINES:
        rest = groups[MAX_ERROR_LINES:]
        console.print(f"[red]ERROR[/red] {len(rest)} other errors in {sum(len(t) for _, t in rest)} trials "
                      "(the leaderboard's error column)", markup=True, highlight=False)


def _checkpoint_cell(r: Any, missing: dict[str, str]) -> str:
    if str(r.trial_id) in missing:
        return "[red]missing[/red]"
    path = r.get("checkpoint_path")
    return f"epoch {int(r.best_epoch)}" if isinstance(path, str) and path and pd.notna(r.get("best_epoch")) else "-"


def driver_line(run_dir: str | Path, meta: dict[str, Any]) -> str:
    """Whether a driver runs the sweep now (its lock is held), and what sweep.json's status means then."""
    from vlp_sweep.sweep.lifecycle.lock import driver_alive

    info = driver_alive(run_dir)
    if info is not None:
        return f"driver: alive, {info.describe()}"
    status = meta.get("status")
    if status == "running":  # killed without a chance to write its status (kill -9, power loss)
        return "driver: not running (it ended without recording how; resume with vlp-sweep run SPACE --resume)"
    if status == "failed":
        stage = f" in the {meta['failed_stage']} stage" if meta.get("failed_stage") else ""
        return f"driver: not running (failed{stage}: {meta.get('reason', 'no reason recorded')})"
    return "driver: not running"


_STYLE = {"fail": "red", "warn": "yellow", "pass": "green"}


def _health(r: Any) -> str:
    """The trial's worst checklist item, coloured, with its flags (leaderboard health columns)."""
    h = r.get("health")
    if h is None or (isinstance(h, float) and pd.isna(h)):
        return "-"
    flags = r.get("health_flags") or ""
    style = _STYLE.get(str(h))
    word = f"[{style}]{h}[/{style}]" if style else str(h)
    return f"{word} {rich_escape(flags)}".strip()


def _running_table(running: pd.DataFrame) -> Any:
    """Every running trial: its progress and, next to it, its health flags."""
    from rich.table import Table

    table = Table(title="running", title_justify="left", show_lines=False)
    for col in ("trial", "epoch", "samples/s", "micro-batch", "health"):
        table.add_column(col, justify="left" if col in ("trial", "health") else "right")
    for _, r in running.sort_values("trial_id").iterrows():
        progress = f"{_fmt(r.get('epochs'), 'd')}/{_fmt(r.get('max_epochs'), 'd')}"
        table.add_row(str(r.trial_id), progress, _fmt(r.get("samples_per_s"), ".0f"),
                      _fmt(r.get("micro_batch"), "d"), _health(r))
    return table


def rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _fmt(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)) or x is pd.NA:
        return "-"
    return format(int(x) if spec == "d" else float(x), spec)

"""Read a sweep folder's leaderboard (for `status`, `report` and `promote`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.errors import UserError
from vlp_sweep.sweep.leaderboard import read_table


def open_sweep(run_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """(sweep.json contents, leaderboard DataFrame); a folder that is not a sweep is a UserError."""
    d = Path(run_dir)
    if not d.is_dir():
        raise UserError(f"not a sweep folder: {d} (no such folder)")
    if not (d / "sweep.json").is_file():
        raise UserError(f"not a sweep folder: {d} (no sweep.json)")
    meta = json.loads((d / "sweep.json").read_text())
    lb_path = d / "leaderboard.parquet"
    board = read_table(lb_path) if lb_path.is_file() else pd.DataFrame()
    return meta, board


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
    for col in ("trial", "status", "epochs", f"best {metric}", "t2v R@1", "R@5", "R@10", "MedR", "time s"):
        table.add_column(col, justify="right" if col not in ("trial", "status") else "left")
    for _, r in board.head(10).iterrows():
        table.add_row(str(r.trial_id), str(r.status), _fmt(r.epochs, "d"), _fmt(r.get(f"best_{metric}")),
                      _fmt(r.best_t2v_R1), _fmt(r.best_t2v_R5), _fmt(r.best_t2v_R10), _fmt(r.best_t2v_MedR, "g"),
                      _fmt(r.time_s, ".0f"))
    console.print(table)
    errors = board[board["status"] == "ERROR"]
    for _, r in errors.iterrows():
        console.print(f"[red]ERROR[/red] {r.trial_id}: {r.error}")


def driver_line(run_dir: str | Path, meta: dict[str, Any]) -> str:
    """Whether a driver runs the sweep now (its lock is held), and what sweep.json's status means then."""
    from vlp_sweep.sweep.lock import driver_alive

    info = driver_alive(run_dir)
    if info is not None:
        return f"driver: alive, {info.describe()}"
    status = meta.get("status")
    if status == "running":  # killed without a chance to write its status (kill -9, power loss)
        return "driver: not running (it ended without recording how; resume with vlp-sweep run SPACE --resume)"
    if status == "failed":
        return f"driver: not running (failed: {meta.get('reason', 'no reason recorded')})"
    return "driver: not running"


def _fmt(x: Any, spec: str = ".2f") -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return "-"
    return format(int(x) if spec == "d" else float(x), spec)

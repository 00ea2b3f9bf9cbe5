"""The confirmation stage's tables (written through the leaderboard module's atomic Parquet writer).

    confirm.parquet        one row per configuration x seed (schema: CONFIRM_SCHEMA)
    confirm_ranks.parquet  per-query ranks of each trial's selected checkpoint: ``split`` is ``dev`` (the
                           eval split, which selected the epoch) or ``test`` (the held-out split)

``dev_*`` are the metrics of the selected checkpoint re-evaluated on the eval split (they equal the
trial's report at that epoch), ``test_*`` the same checkpoint on the held-out split, evaluated once.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.sweep.leaderboard import finite_float, write_table_atomic

CONFIRM_FILE = "confirm.parquet"
CONFIRM_RANKS_FILE = "confirm_ranks.parquet"
SPLITS = ("dev", "test")

CONFIRM_SCHEMA = pa.schema(
    [("sweep", pa.string()), ("trial_id", pa.string()), ("config_id", pa.string()), ("role", pa.string()),
     ("search_rank", pa.int64()), ("search_trials", pa.string()), ("search_value", pa.float64()),
     ("seed", pa.int64()), ("status", pa.string()), ("error", pa.string()), ("selected_epoch", pa.int64()),
     ("epochs", pa.int64()), ("eval_split", pa.string()), ("test_split", pa.string()), ("test_n", pa.int64())]
    + [(f"{s}_{m}", pa.float64()) for s in SPLITS for m in METRIC_NAMES]
    + [("checkpoint_path", pa.string()), ("checkpoint_sha256", pa.string()), ("config_json", pa.string()),
       ("updated_at", pa.timestamp("s", tz="UTC"))])
CONFIRM_RANKS_SCHEMA = pa.schema([("sweep", pa.string()), ("trial_id", pa.string()), ("config_id", pa.string()),
                                  ("seed", pa.int64()), ("split", pa.string()), ("direction", pa.string()),
                                  ("ranks", pa.list_(pa.int32()))])


def confirm_row(sweep: str, spec: Any, cand: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """One trial's row: the candidate it ran, its seed, and the selected checkpoint's dev and test metrics."""
    m = out["metrics"]
    row: dict[str, Any] = {
        "sweep": sweep, "trial_id": out["trial_id"], "config_id": out["config_id"], "role": cand["role"],
        "search_rank": cand.get("search_rank"), "search_trials": json.dumps(cand.get("search_trials") or []),
        "search_value": finite_float(cand.get("search_value")), "seed": out["seed"],
        "status": "ERROR" if out["error"] else "TERMINATED", "error": out["error"],
        "selected_epoch": m.get("selected_epoch") if not out["error"] else None,
        "epochs": m.get("epoch"), "eval_split": cand["config"].get("data.eval_split"),
        "test_split": spec.confirm.split, "checkpoint_path": out["checkpoint_path"],
        "checkpoint_sha256": m.get("checkpoint_sha256") if out["checkpoint_path"] else None,
        "config_json": json.dumps(cand["config"], sort_keys=True, default=str),
        "updated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0)}
    for s in SPLITS:
        found = {} if out["error"] else (m.get(s) or {}).get("metrics") or {}
        row |= {f"{s}_{k}": finite_float(found.get(k)) for k in METRIC_NAMES}
    row["test_n"] = (m.get("test") or {}).get("n") if not out["error"] else None
    return row


def rank_rows(sweep: str, out: dict[str, Any]) -> list[dict[str, Any]]:
    if out["error"]:
        return []
    rows = []
    for s in SPLITS:
        part = out["metrics"].get(s) or {}
        for d in ("t2v", "v2t"):
            if f"{d}_ranks" in part:
                rows.append({"sweep": sweep, "trial_id": out["trial_id"], "config_id": out["config_id"],
                             "seed": out["seed"], "split": s, "direction": d,
                             "ranks": [int(r) for r in part[f"{d}_ranks"]]})
    return rows


def write_confirm(run_dir: Path, sweep: str, spec: Any, cands: dict[str, dict[str, Any]],
                  outcomes: list[dict[str, Any]]) -> Path:
    """Write both tables (whole, atomically); rows in candidate order, then seed."""
    order = {c: i for i, c in enumerate(cands)}
    outcomes = sorted(outcomes, key=lambda o: (order.get(o["config_id"], len(order)), o["seed"]))
    rows = [confirm_row(sweep, spec, cands[o["config_id"]], o) for o in outcomes]
    ranks = [r for o in outcomes for r in rank_rows(sweep, o)]
    write_table_atomic(rows, CONFIRM_SCHEMA, run_dir / CONFIRM_FILE)
    write_table_atomic(ranks, CONFIRM_RANKS_SCHEMA, run_dir / CONFIRM_RANKS_FILE)
    return run_dir / CONFIRM_FILE

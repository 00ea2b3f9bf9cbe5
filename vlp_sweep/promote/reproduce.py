"""Does a promoted checkpoint, evaluated again, give the numbers its sweep's leaderboard holds?

`vlp-sweep eval --ckpt DIR/vlp_best_full.pt` asks this after printing the metrics: the checkpoint's
release folder has a ``promoted.json`` naming the sweep, trial and epoch; the row of that trial in the
sweep's ``leaderboard.parquet`` (or, when the run folder is gone, the metrics the manifest copied from it)
is compared metric by metric.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.promote import store
from vlp_sweep.promote.verify import TOLERANCE, largest_diff
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.tables.leaderboard import read_table


def promoted_manifest(ckpt: str | Path) -> dict[str, Any] | None:
    """The manifest of the promoted release whose full checkpoint ``ckpt`` is (through the stable link
    or the release folder); None for any other file. A release that fails its hashes (a flipped byte, a
    file replaced) is a UserError naming the file: its numbers must not be shown as if all were well."""
    real = Path(os.path.realpath(ckpt))
    if real.name != store.FULL or not (real.parent / store.MANIFEST).is_file():
        return None
    manifest, problem = store.read_release(real.parent)
    if manifest is None:
        raise UserError(f"{ckpt}: the promoted release is damaged ({problem}); promote the trial again, or use "
                        f"the previous champion ({store.PREVIOUS}/{store.FULL} beside {store.CURRENT}/)")
    return manifest


def recorded_numbers(manifest: Mapping[str, Any]) -> tuple[dict[str, float], str]:
    """(metrics, where they come from): the sweep's leaderboard row of the promoted trial at the promoted
    epoch when the run folder still has it, else the metrics the manifest copied at promote time (and
    always those for a candidate of another stage than the search, e.g. a confirmation on test)."""
    tid, epoch, sweep = manifest.get("trial_id"), manifest.get("best_epoch"), manifest.get("sweep")
    board_path = Path(str(manifest.get("run_dir", ""))) / "leaderboard.parquet"
    try:
        if manifest.get("stage", "search") != "search":
            raise LookupError("not a leaderboard number")
        board = read_table(board_path)
        row = board[(board["trial_id"] == tid) & (board["best_epoch"] == epoch)].iloc[0]
    except Exception:  # the run folder moved or was deleted, or the trial is no longer in it
        metrics = {k: float(v) for k, v in (manifest.get("metrics") or {}).items() if finite_float(v) is not None}
        return metrics, f"the numbers promoted.json recorded for sweep {sweep}, trial {tid} (epoch {epoch})"
    metrics = {m: v for m in RETRIEVAL_METRICS if (v := finite_float(row.get(f"best_{m}"))) is not None}
    return metrics, f"the leaderboard of sweep {sweep} ({board_path}), trial {tid} at epoch {epoch}"


def reproduction_line(manifest: Mapping[str, Any] | None, got: Mapping[str, float], split: str, device: str,
                      tolerance: float = TOLERANCE) -> tuple[bool | None, str] | None:
    """(reproduced, one line saying so) for a promoted checkpoint (its ``promoted_manifest``) evaluated on
    ``split``; (None, why there is nothing to compare) when its numbers were measured on another split; None
    when it is not one."""
    if manifest is None:
        return None
    recorded = (manifest.get("verification") or {}).get("eval_split", split)
    if recorded != split:
        stage = manifest.get("stage", "search")
        what = "selection numbers of the search stage" if stage == "search" else f"its {stage} stage's numbers"
        return None, (f"nothing to compare: promoted.json recorded the {recorded} split's numbers ({what}) for "
                      f"sweep {manifest.get('sweep')}, trial {manifest.get('trial_id')}; none on {split}")
    want, where = recorded_numbers(manifest)
    worst = largest_diff(got, {m: want.get(m) for m in RETRIEVAL_METRICS})
    if worst is None:
        return False, f"cannot compare: {where} has no retrieval metrics"
    name, diff = worst
    n = sum(m in want for m in RETRIEVAL_METRICS)
    if diff <= tolerance:
        return True, f"reproduces {where}: {n} metrics equal (max |diff| {diff:.2g})"
    return False, (f"does NOT reproduce {where}: {name} {got[name]:.4f} vs {want[name]:.4f} (tolerance "
                   f"{tolerance:g}; evaluated on {device}; a GPU-trained trial re-evaluated on a CPU can differ)")

"""Promote a sweep's best trial: verify its checkpoint and swap it in atomically as the champion.

``promote(run_dir, ...)``:

1. picks the candidate: ``--trial``, or the best finished trial by the metric (tie-break in
   ``vlp_sweep.report.select``: metric, then rsum, then the earlier best epoch, then trial id);
2. checks the recorded sha256, refuses a challenger worse than the current champion (unless forced),
   loads the checkpoint with ``weights_only=True`` and re-evaluates it (see ``verify``);
3. writes ``vlp_best_full.pt`` (a byte copy, so its sha256 is the one the trainer recorded),
   ``vlp_best_encoder.pt``, ``vlp_best_encoder.safetensors`` and ``promoted.json`` as one release and
   commits it with one atomic rename (see ``store``); the old champion stays as ``previous``;
4. logs a W&B artifact (alias "best") when the sweep has W&B on.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.atomic import fsync_file
from vlp_sweep.errors import UserError, did_you_mean
from vlp_sweep.metric_names import METRIC_NAMES, RETRIEVAL_METRICS
from vlp_sweep.promote import store
from vlp_sweep.promote.verify import TOLERANCE, Verified, check_hash, verify
from vlp_sweep.report.select import FINISHED, Sweep, load_sweep, rank_trials, resolve_metric, trial_params
from vlp_sweep.sweep.leaderboard import finite_float
from vlp_sweep.train.checkpoint import encoder_only, save_checkpoint, sha256_file

__all__ = ["PromoteResult", "promote", "choose", "TOLERANCE"]


@dataclass
class PromoteResult:
    dest: Path
    manifest: dict[str, Any]
    replaced: dict[str, Any] | None = None
    release: Path | None = None  # the release folder now current
    unchanged: bool = False
    lines: list[str] = field(default_factory=list)  # what happened, for the user




# ---------------------------------------------------------------- choosing


def choose(sweep: Sweep, trial: str | None, metric: str, mode: str) -> pd.Series:
    """The leaderboard row to promote."""
    board = sweep.board
    if board.empty:
        raise UserError(f"no finished trial in {sweep.run_dir}: the leaderboard is empty")
    if trial is not None:
        ids = [str(t) for t in board["trial_id"]]
        if trial not in ids:
            shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
            raise UserError(f"trial '{trial}' is not in sweep {sweep.name}{did_you_mean(trial, ids)} "
                            f"(trials: {shown})")
        row = board[board["trial_id"] == trial].iloc[0]
        if row["status"] not in FINISHED:
            raise UserError(f"trial {trial} is {str(row['status']).lower()}: only finished trials "
                            f"({', '.join(s.lower() for s in FINISHED)}) can be promoted")
    else:
        ranked = rank_trials(sweep.finished(), metric, mode)
        if ranked.empty:
            counts = board["status"].value_counts().to_dict()
            summary = ", ".join(f"{v} {str(k).lower()}" for k, v in sorted(counts.items(), key=str))
            raise UserError(f"no finished trial with a {metric} in {sweep.run_dir} ({summary})")
        with_ckpt = ranked[ranked["checkpoint_path"].notna()]
        row = (with_ckpt if not with_ckpt.empty else ranked).iloc[0]
    if finite_float(row.get(f"best_{metric}")) is None:
        raise UserError(f"trial {row['trial_id']} has no {metric} in the leaderboard")
    if not row.get("checkpoint_path") or pd.isna(row.get("checkpoint_path")):
        raise UserError(f"trial {row['trial_id']} has no checkpoint recorded in the leaderboard")
    return row


def _worse(value: float, champion: float, mode: str) -> bool:
    return value < champion if mode == "max" else value > champion


def check_challenger(champion: dict[str, Any] | None, row: pd.Series, metric: str, mode: str,
                     force: bool) -> list[str]:
    """Refuse a challenger worse than the champion on ``metric`` unless forced; returns notes."""
    if champion is None:
        return []
    value = float(row[f"best_{metric}"])
    champ = finite_float((champion.get("metrics") or {}).get(metric))
    who = f"the champion (sweep {champion.get('sweep')}, trial {champion.get('trial_id')})"
    if champ is None:
        return [f"note: {who} has no {metric} recorded; not compared"]
    if _worse(value, champ, mode):
        if not force:
            raise UserError(f"refusing: trial {row['trial_id']} has {metric} {value:.2f}, worse than {who} with "
                            f"{champ:.2f} ({mode} is better); use --force to replace it anyway")
        return [f"forced: {metric} {value:.2f} replaces the better {champ:.2f} of {who}"]
    return [f"challenger {metric} {value:.2f} vs {who} {champ:.2f}: not worse"]


# ---------------------------------------------------------------- writing a release


def _save_safetensors(ckpt: dict[str, Any], path: Path, extra: dict[str, str]) -> None:
    from safetensors.torch import save_file

    # safetensors refuses shared or non-contiguous storage: give it plain contiguous copies.
    tensors = {k: v.detach().clone().contiguous() for k, v in ckpt["model"].items()}
    meta = {"format": "vlp-sweep/encoder-safetensors/1", "config": json.dumps(ckpt["config"]),
            "model_args": json.dumps(ckpt["model_args"]), "vocab": json.dumps(ckpt["vocab"]),
            "metrics": json.dumps(ckpt.get("metrics", {})), "dataset_hash": str(ckpt.get("dataset_hash", "")),
            "epoch": str(ckpt.get("epoch", "")), **extra}
    save_file(tensors, str(path), metadata=meta)
    fsync_file(path)


def write_payload(folder: Path, v: Verified, sweep: str, trial: str) -> dict[str, dict[str, Any]]:
    """The three model files in ``folder``; returns their names with sha256 and size."""
    shutil.copyfile(v.path, folder / store.FULL)
    fsync_file(folder / store.FULL)
    if sha256_file(folder / store.FULL) != v.sha256:
        raise UserError(f"{v.path}: the copy does not match the verified file (changed while promoting?)")
    save_checkpoint(encoder_only(v.checkpoint), folder / store.ENCODER)
    _save_safetensors(v.checkpoint, folder / store.SAFETENSORS, {"sweep": sweep, "trial_id": trial})
    for n in store.PAYLOAD:
        (folder / n).chmod(0o644)  # temporary-file writers leave 0600; the set is meant to be shared
    return {n: {"sha256": sha256_file(folder / n), "bytes": (folder / n).stat().st_size} for n in store.PAYLOAD}


def build_manifest(sweep: Sweep, row: pd.Series, metric: str, mode: str, v: Verified,
                   files: dict[str, dict[str, Any]], champion: dict[str, Any] | None, forced: bool) -> dict[str, Any]:
    from vlp_sweep import __version__

    metrics = {m: val for m in METRIC_NAMES if (val := finite_float(row.get(f"best_{m}"))) is not None}
    replaced = None if champion is None else {k: champion.get(k) for k in (
        "sweep", "trial_id", "metric", "value", "promoted_at", "release")}
    return {
        "format": store.MANIFEST_FORMAT, "sweep": sweep.name, "run_dir": str(sweep.run_dir.resolve()),
        "trial_id": str(row["trial_id"]), "status": str(row["status"]), "metric": metric, "mode": mode,
        "value": float(row[f"best_{metric}"]), "metrics": metrics, "best_epoch": int(row["best_epoch"]),
        "params": trial_params(row), "config": v.checkpoint["config"], "source_checkpoint": str(v.path),
        "source_sha256": v.sha256, "dataset_hash": v.checkpoint.get("dataset_hash", ""), "files": files,
        "verification": {"sha256": "matches the leaderboard", "weights_only_load": True,
                         "eval_split": v.split, "queries": v.n_queries, "device": v.device,
                         "tolerance": v.tolerance, "max_abs_diff": v.max_diff, "metrics": v.metrics},
        "forced": forced, "replaced": replaced,
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tool_version": __version__}


# ---------------------------------------------------------------- the command


def promote(run_dir: str | Path, trial: str | None = None, metric: str | None = None,
            to: str | Path = "checkpoints", force: bool = False, device: str = "auto",
            tolerance: float = TOLERANCE, wandb: bool = True,
            progress: Callable[[str], None] | None = None) -> PromoteResult:
    say = progress or (lambda _line: None)
    sweep = load_sweep(run_dir)
    metric, mode = resolve_metric(metric, sweep.spec)
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {tolerance}")
    row = choose(sweep, trial, metric, mode)
    tid = str(row["trial_id"])
    say(f"candidate: trial {tid} of sweep {sweep.name}, {metric} {float(row[f'best_{metric}']):.2f} "
        f"(epoch {int(row['best_epoch'])})")
    dest = store.check_destination(to)
    champion, problem = store.read_champion(dest)
    if problem:
        say(f"warning: the current champion in {dest} is damaged ({problem}); it will be replaced")
    if champion is not None and _same_as(champion, row, sweep.name):
        check_hash(Path(str(row["checkpoint_path"])), row.get("checkpoint_sha256"))
        return PromoteResult(dest, champion, unchanged=True,
                             lines=[f"trial {tid} of sweep {sweep.name} is already the champion in {dest}"])
    v = _verify(row, champion, metric, mode, force, device, tolerance)
    res = _install(dest, sweep, row, metric, mode, v, force)
    if wandb:
        from vlp_sweep.promote.wandb_log import log_artifact

        assert res.release is not None
        line = log_artifact(res.release, res.manifest, sweep.spec.get("wandb") or {}, sweep.run_dir)
        res.lines += [line] if line else []
    return res


def _verify(row: pd.Series, champion: dict[str, Any] | None, metric: str, mode: str, force: bool, device: str,
            tolerance: float) -> Verified:
    """Cheap checks first (hash, champion), then the weights_only load and the re-evaluation."""
    path, sha = Path(str(row["checkpoint_path"])), row.get("checkpoint_sha256")
    check_hash(path, sha)
    check_challenger(champion, row, metric, mode, force)
    expected = {m: finite_float(row.get(f"best_{m}")) for m in RETRIEVAL_METRICS}
    return verify(path, sha, int(row["best_epoch"]), expected, device, tolerance)


def _install(dest: Path, sweep: Sweep, row: pd.Series, metric: str, mode: str, v: Verified,
             force: bool) -> PromoteResult:
    store.prepare(dest)  # nothing is created in the destination before every check has passed
    with store.locked(dest):
        champion, _ = store.read_champion(dest)  # again: another promote may have committed meanwhile
        lines = check_challenger(champion, row, metric, mode, force)
        lines.append(f"verified: sha256 {v.sha256[:12]}… as recorded, weights_only load, re-evaluation on "
                     f"{v.split} ({v.n_queries} queries, device {v.device}) reproduces the leaderboard "
                     f"(max |diff| {v.max_diff:.2g})")
        manifest, release = _write_and_commit(dest, sweep, row, metric, mode, v, champion, force)
    lines.append(f"promoted to {dest}: {', '.join((*store.PAYLOAD, store.MANIFEST))}")
    if champion:
        lines.append(f"previous champion (sweep {champion.get('sweep')}, trial {champion.get('trial_id')}) kept "
                     f"in {dest / store.PREVIOUS}")
    return PromoteResult(dest, manifest, replaced=champion, release=release, lines=lines)


def _same_as(champion: dict[str, Any], row: pd.Series, sweep: str) -> bool:
    return bool(champion.get("source_sha256") == row.get("checkpoint_sha256")
                and champion.get("trial_id") == str(row["trial_id"]) and champion.get("sweep") == sweep)


def _write_and_commit(dest: Path, sweep: Sweep, row: pd.Series, metric: str, mode: str, v: Verified,
                      champion: dict[str, Any] | None, force: bool) -> tuple[dict[str, Any], Path]:
    rid, tmp = store.new_release(dest)
    try:
        files = write_payload(tmp, v, sweep.name, str(row["trial_id"]))
        manifest = build_manifest(sweep, row, metric, mode, v, files, champion, force)
        store.write_manifest(tmp, manifest)  # last: a release without it is incomplete
        release = store.finish_release(dest, rid, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    store.commit(dest, release)
    store.prune(dest)
    return manifest, release

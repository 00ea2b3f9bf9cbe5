"""Promote a sweep's best trial: verify its checkpoint and swap it in atomically as the champion.

``promote(run_dir, ...)``:

1. picks the candidate (``candidates``): ``--trial``, or the best finished trial by the selection rule
   (``vlp_sweep.selection``: metric, then rsum, then the earlier best epoch, then trial id) whose
   checkpoint is on disk, saying so in one line when better trials were skipped for a missing file; a
   confirmation stage passes its own ``source`` of candidates (and its verdict, said first); a stage that
   failed or has not run is refused, unless ``search_winner`` asks for the search's best trial;
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

from vlp_sweep.atomic import fsync_file
from vlp_sweep.errors import UserError, write_error
from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.promote import store
from vlp_sweep.promote.candidates import Candidate, Source, from_leaderboard, pick
from vlp_sweep.promote.verify import TOLERANCE, Verified, check_hash, verify
from vlp_sweep.selection import finite_float
from vlp_sweep.sweep.tables.results import Sweep, load_sweep, resolve_metric
from vlp_sweep.train.checkpoint import encoder_only, save_checkpoint, sha256_file

__all__ = ["Candidate", "PromoteResult", "Source", "TOLERANCE", "choose", "from_leaderboard", "promote"]


@dataclass
class PromoteResult:
    dest: Path
    manifest: dict[str, Any]
    replaced: dict[str, Any] | None = None
    release: Path | None = None  # the release folder now current
    unchanged: bool = False
    lines: list[str] = field(default_factory=list)  # what happened, for the user




# ---------------------------------------------------------------- choosing


def choose(sweep: Sweep, trial: str | None, metric: str, mode: str,
           source: Source = from_leaderboard) -> tuple[Candidate, str]:
    """The candidate to promote (the best from ``source`` whose checkpoint is on disk) and a line naming
    better ones skipped for a missing checkpoint ("" when none was)."""
    return pick(source(sweep, trial, metric, mode), metric, sweep.name)


def _worse(value: float, champion: float, mode: str) -> bool:
    return value < champion if mode == "max" else value > champion


def check_challenger(champion: dict[str, Any] | None, cand: Candidate, metric: str, mode: str,
                     force: bool) -> list[str]:
    """Refuse a challenger worse than the champion on ``metric`` unless forced; returns notes."""
    if champion is None:
        return []
    value = float(cand.metrics[metric])
    champ = finite_float((champion.get("metrics") or {}).get(metric))
    who = f"the champion (sweep {champion.get('sweep')}, trial {champion.get('trial_id')})"
    if champ is None:
        return [f"note: {who} has no {metric} recorded; not compared"]
    if _worse(value, champ, mode):
        if not force:
            raise UserError(f"refusing: trial {cand.trial_id} has {metric} {value:.2f}, worse than {who} with "
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


def build_manifest(sweep: Sweep, cand: Candidate, metric: str, mode: str, v: Verified,
                   files: dict[str, dict[str, Any]], champion: dict[str, Any] | None, forced: bool) -> dict[str, Any]:
    from vlp_sweep import __version__

    replaced = None if champion is None else {k: champion.get(k) for k in (
        "sweep", "trial_id", "metric", "value", "promoted_at", "release")}
    return {
        "format": store.MANIFEST_FORMAT, "sweep": sweep.name, "run_dir": str(sweep.run_dir.resolve()),
        "trial_id": cand.trial_id, "status": cand.status, "metric": metric, "mode": mode,
        "value": float(cand.metrics[metric]), "metrics": dict(cand.metrics), "best_epoch": cand.epoch,
        "stage": cand.stage, "params": cand.params, "config": v.checkpoint["config"],
        "source_checkpoint": str(v.path),
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
            progress: Callable[[str], None] | None = None, source: Source | None = None,
            search_winner: bool = False) -> PromoteResult:
    """Promote the best candidate of ``source`` into ``to``. Default source: the confirmed winner when the
    space has a confirmation stage (refused when the stage failed or has not run, unless ``search_winner``
    asks for the search's best trial), else the sweep's leaderboard."""
    say = progress or (lambda _line: None)
    sweep = load_sweep(run_dir)
    metric, mode = resolve_metric(metric, sweep.spec)
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {tolerance}")
    source = source or _default_source(sweep, trial, metric, mode, search_winner, say)
    cand, skipped = choose(sweep, trial, metric, mode, source)
    if skipped:
        say(skipped)
    tid = cand.trial_id
    say(f"candidate: trial {tid} of sweep {sweep.name}, {metric} {cand.metrics[metric]:.2f} (epoch {cand.epoch})")
    dest = store.check_destination(to)
    champion, problem = store.read_champion(dest)
    if problem:
        say(f"warning: the current champion in {dest} is damaged ({problem}); it will be replaced")
    if champion is not None and _same_as(champion, cand):
        check_hash(_path(cand), cand.sha256)
        return PromoteResult(dest, champion, unchanged=True,
                             lines=[f"trial {tid} of sweep {sweep.name} is already the champion in {dest}"])
    v = _verify(cand, champion, metric, mode, force, device, tolerance)
    res = _install(dest, sweep, cand, metric, mode, v, force)
    if wandb:
        from vlp_sweep.promote.wandb_log import log_artifact

        assert res.release is not None
        line = log_artifact(res.release, res.manifest, sweep.spec.get("wandb") or {}, sweep.run_dir)
        res.lines += [line] if line else []
    return res


def _default_source(sweep: Sweep, trial: str | None, metric: str, mode: str, search_winner: bool,
                    say: Callable[[str], None]) -> Source:
    """The confirmed winner, or the leaderboard where there is no stage or the user asks for a search trial
    (``--trial``, ``--search-winner``); a stage that failed or has not run never falls back silently."""
    from vlp_sweep.promote.candidates import confirmation_problem, from_confirmation

    if not isinstance(sweep.spec.get("confirm"), dict):
        return from_leaderboard
    selection = "its numbers are selection numbers (the dev split that chose it), not a confirmed result"
    if trial is not None:
        say(f"--trial {trial}: a trial of the search; {selection}")
        return from_leaderboard
    problem = confirmation_problem(sweep)
    if search_winner:
        say(f"--search-winner: installing the search's best trial{f' ({problem})' if problem else ''}; {selection}")
        return from_leaderboard
    if problem:
        raise UserError(f"sweep {sweep.name}: {problem}: nothing promoted (--search-winner installs the search's "
                        "best trial instead, with selection numbers)")
    say("the confirmation stage ran: promoting the configuration it chose on dev (the best dev mean over fresh "
        "seeds), whatever its verdict against the baseline; the numbers recorded and re-checked are its "
        "held-out test numbers")
    for line in _verdict(sweep, metric, mode):
        say(line)
    return from_confirmation


def _verdict(sweep: Sweep, metric: str, mode: str) -> list[str]:
    """The report's confirmed headline and the lines after it (the seed-level verdict, ties)."""
    from vlp_sweep.report.stats import RESAMPLES, SEED
    from vlp_sweep.report.verdicts.confirmed import analyse

    conf = analyse(sweep, metric, mode, RESAMPLES, SEED)
    return [] if conf is None else [f"confirmed: {conf.headline}", *(f"  {line}" for line in conf.lines)]


def _path(cand: Candidate) -> Path:
    assert cand.checkpoint is not None  # pick() refuses a candidate without one
    return cand.checkpoint


def _verify(cand: Candidate, champion: dict[str, Any] | None, metric: str, mode: str, force: bool, device: str,
            tolerance: float) -> Verified:
    """Cheap checks first (hash, champion), then the weights_only load and the re-evaluation."""
    check_hash(_path(cand), cand.sha256)
    check_challenger(champion, cand, metric, mode, force)
    expected: dict[str, float | None] = {m: cand.metrics.get(m) for m in RETRIEVAL_METRICS}
    return verify(_path(cand), cand.sha256, cand.epoch, expected, device, tolerance, split=cand.split)


def _install(dest: Path, sweep: Sweep, cand: Candidate, metric: str, mode: str, v: Verified,
             force: bool) -> PromoteResult:
    # What this promote creates; a failed write (a full disk, a read-only folder) removes it again.
    fresh = [p for p in (dest, dest / store.RELEASES, dest / store.LOCK) if not (p.exists() or p.is_symlink())]
    try:
        store.prepare(dest)  # nothing is created in the destination before every check has passed
        with store.locked(dest):
            champion, _ = store.read_champion(dest)  # again: another promote may have committed meanwhile
            lines = check_challenger(champion, cand, metric, mode, force)
            manifest, release = _write_and_commit(dest, sweep, cand, metric, mode, v, champion, force)
    except OSError as e:
        store.remove_fresh(fresh)
        why = write_error(e.filename or dest, e)
        raise UserError(f"{why}; nothing was promoted, the champion in {dest} is unchanged") from None
    lines.append(f"verified: sha256 {v.sha256[:12]}… as recorded, weights_only load, re-evaluation on "
                 f"{v.split} ({v.n_queries} queries, device {v.device}) reproduces the "
                 f"{'leaderboard' if cand.stage == 'search' else 'confirmation table'} "
                 f"(max |diff| {v.max_diff:.2g})")
    lines.append(f"promoted to {dest}: {', '.join((*store.PAYLOAD, store.MANIFEST))}")
    if champion:
        lines.append(f"previous champion (sweep {champion.get('sweep')}, trial {champion.get('trial_id')}) kept "
                     f"in {dest / store.PREVIOUS}")
    return PromoteResult(dest, manifest, replaced=champion, release=release, lines=lines)


def _same_as(champion: dict[str, Any], cand: Candidate) -> bool:
    return bool(champion.get("source_sha256") == cand.sha256 and champion.get("trial_id") == cand.trial_id
                and champion.get("sweep") == cand.sweep)


def _write_and_commit(dest: Path, sweep: Sweep, cand: Candidate, metric: str, mode: str, v: Verified,
                      champion: dict[str, Any] | None, force: bool) -> tuple[dict[str, Any], Path]:
    rid, tmp = store.new_release(dest)
    try:
        files = write_payload(tmp, v, sweep.name, cand.trial_id)
        manifest = build_manifest(sweep, cand, metric, mode, v, files, champion, force)
        store.write_manifest(tmp, manifest)  # last: a release without it is incomplete
        release = store.finish_release(dest, rid, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        store.commit(dest, release)
    except BaseException:  # not committed (the commit is one rename): the old champion stands
        if not store.is_current(dest, release):
            shutil.rmtree(release, ignore_errors=True)
        raise
    store.prune(dest)
    return manifest, release

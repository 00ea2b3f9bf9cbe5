"""``import_dataset``: captions + pose files / arrays (+ SigLIP features) -> one packed dataset.

Reads top to bottom: options, captions, files by id, matching, parallel reading (one clip per
task: read, pick the preset's points, mark missing points, resample), consistency checks across
clips, then :func:`~vlp_sweep.data.packed.write_packed` (temporary folder renamed when complete).
Coordinates stay raw; the trainer normalises them by the layout's shoulders at load time, exactly
as for the synthetic corpus.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep import __version__
from vlp_sweep.data.importers.arrays import read_array_clip
from vlp_sweep.data.importers.captions import read_captions
from vlp_sweep.data.importers.poses import RawClip, read_header, read_pose
from vlp_sweep.data.importers.presets import PRESETS, Selection, header_key, select
from vlp_sweep.data.importers.resample import resample
from vlp_sweep.data.importers.sources import (
    NO_FRAMES,
    POSE_SUFFIXES,
    REASONS,
    SEVERAL_FILES,
    SEVERAL_SIGLIP,
    SIGLIP_MISMATCH,
    Job,
    Skip,
    compile_pattern,
    find_files,
    index_by_id,
    match,
)
from vlp_sweep.data.importers.text_features import read_text_features
from vlp_sweep.data.layout import Layout
from vlp_sweep.data.packed import pack_clips, write_packed
from vlp_sweep.errors import UserError

FLOAT16_MAX = 65000.0  # a little under float16's largest finite value (65504)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    """What to import and how; the CLI flags of `vlp-sweep data import` map one to one."""

    out: Path
    poses: tuple[Path, ...]  # .pose / .npy / .npz files or folders (searched recursively)
    captions: tuple[Path, ...]
    captions_format: str = "auto"  # auto | plain | phoenix | how2sign
    split: str | None = None  # split of captions without a split column (else from the file name)
    siglip: Path | None = None  # folder of <id>.npy [T, D]
    text_features: Path | None = None  # folder of <id>.npy [D]: precomputed per-clip text features
    preset: str = "all"  # all | reduced | hands-body
    dims: int | None = None  # coordinate channels kept (default: X/Y/Z of a .pose, all of an array)
    target_fps: float | None = None  # resample every clip to this rate
    fps: float | None = None  # frame rate of array clips that carry none
    id_pattern: str | None = None  # regex whose first group is the clip id within a file stem
    array_layout: str = "auto"  # auto | holistic | openpose | generic | path to a .pose file
    shoulders: tuple[int, int] | None = None  # (left, right) point indices for unnamed array points
    npy_confidence: bool = False  # the last channel of .npy arrays is confidence
    workers: int = 0  # reading threads (0 = min(8, CPUs))
    overwrite: bool = False


@dataclass
class Loaded:
    """One clip ready to pack."""

    job: Job
    keypoints: np.ndarray  # [T, K, C] float16, missing points 0
    confidence: np.ndarray  # [T, K] float16
    siglip: np.ndarray | None  # [T, D] float16
    fps: float
    selection: Selection
    channels: str  # kept coordinate letters
    dropped: str  # coordinate letters of the source that were not kept
    people: int


@dataclass
class ImportResult:
    out: Path
    n_clips: int
    n_frames: int
    splits: dict[str, int]
    layout: Layout
    channels: str
    fps: float
    siglip_dim: int
    text_feature_dim: int = 0
    skipped: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, max_ids: int = 5) -> list[str]:
        """Lines for the terminal: what was written, every skip reason with its count, notes."""
        splits = ", ".join(f"{k} {v}" for k, v in self.splits.items())
        sh = self.layout.shoulders
        shoulders = f"{self.layout.names[sh[0]]} / {self.layout.names[sh[1]]}" if sh else "none"
        lines = [f"imported {self.n_clips} clips ({splits}), {self.n_frames} frames at {self.fps:g} fps "
                 f"-> {self.out}",
                 f"layout {self.layout.name}: {len(self.layout.names)} points x {len(self.channels)} "
                 f"({', '.join(self.channels)}); shoulders {shoulders}"
                 + (f"; SigLIP {self.siglip_dim}-d" if self.siglip_dim else "")
                 + (f"; text features {self.text_feature_dim}-d" if self.text_feature_dim else "")]
        lines += skip_lines(self.skipped, max_ids, where=f"{self.out}/meta.json under import.skipped")
        return lines + [f"note: {n}" for n in self.notes]


def skip_lines(skipped: list[Skip], max_ids: int = 5, where: str = "") -> list[str]:
    if not skipped:
        return ["no clip skipped"]
    by_reason: dict[str, list[Skip]] = {}
    for s in skipped:
        by_reason.setdefault(s.reason, []).append(s)
    lines = [f"skipped {len(skipped)} clip(s)" + (f" (all listed in {where})" if where else "") + ":"]
    for reason in sorted(by_reason, key=lambda r: REASONS.index(r) if r in REASONS else len(REASONS)):
        items = by_reason[reason]
        shown = ", ".join(f"{s.id}" + (f" [{s.detail}]" if s.detail and reason == SIGLIP_MISMATCH else "")
                          for s in items[:max_ids])
        lines.append(f"  {reason}: {len(items)} ({shown}{', ...' if len(items) > max_ids else ''})")
    return lines


def check_options(opts: ImportOptions) -> None:
    if opts.preset not in PRESETS:
        raise UserError(f"--preset must be one of {', '.join(PRESETS)}, got {opts.preset!r}")
    for name, value in (("--target-fps", opts.target_fps), ("--fps", opts.fps)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise UserError(f"{name} must be a positive number, got {value}")
    if opts.dims is not None and opts.dims < 1:
        raise UserError(f"--dims must be >= 1, got {opts.dims}")
    if opts.workers < 0:
        raise UserError(f"--workers must be >= 0, got {opts.workers}")
    if not opts.poses or not opts.captions:
        raise UserError("give at least one --poses path and one --captions file")
    if opts.out.exists() and not opts.overwrite:
        raise UserError(f"output folder exists: {opts.out} (pass --overwrite to replace it)")
    if opts.out.exists() and not opts.out.is_dir():
        raise UserError(f"output path is a file: {opts.out}")


def _read_all_captions(opts: ImportOptions) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    frames, used = [], []
    for path in opts.captions:
        df, fmt = read_captions(path, opts.captions_format, opts.split)
        frames.append(df)
        used.append({"path": str(path.resolve()), "format": fmt, "rows": str(len(df))})
    return pd.concat(frames, ignore_index=True), used


def _outside(files: list[Path], given: tuple[Path, ...], *folders: Path | None) -> list[Path]:
    """Leave out files under ``folders`` (unless a folder holds a given poses path): an older import
    in the output folder, or SigLIP features kept inside the poses folder, are not pose arrays."""
    starts = [p.absolute() for p in given]
    roots = [r.absolute() for r in folders if r is not None and r.is_dir()]
    roots = [r for r in roots if not any(r == s or r in s.parents for s in starts)]
    return [f for f in files if not any(r in f.absolute().parents for r in roots)] if roots else files


class _ClipReader:
    """Reads one job into a :class:`Loaded`; shared by the reading threads (its cache is append-only)."""

    def __init__(self, opts: ImportOptions) -> None:
        self.opts = opts
        self.reference = read_header(Path(opts.array_layout)) if opts.array_layout.endswith(".pose") else None
        self._selections: dict[Any, Selection] = {}

    def selection(self, raw: RawClip) -> Selection:
        key = header_key(raw.header)
        if key not in self._selections:
            self._selections[key] = select(raw.header, self.opts.preset, self.opts.shoulders)
        return self._selections[key]

    def raw(self, path: Path) -> RawClip:
        if path.suffix.lower() == ".pose":
            return read_pose(path)
        return read_array_clip(path, self.opts.array_layout, self.reference,
                               confidence_last=self.opts.npy_confidence)

    def __call__(self, job: Job) -> Loaded | Skip:
        raw = self.raw(job.pose)
        t = len(raw.keypoints)
        if t == 0:
            return Skip(job.id, NO_FRAMES, str(job.pose))
        siglip = _read_siglip(job.siglip) if job.siglip is not None else None
        if siglip is not None and len(siglip) != t:
            return Skip(job.id, SIGLIP_MISMATCH, f"keypoints {t} frames, SigLIP {len(siglip)}")
        fps = raw.fps or self.opts.fps
        if fps is None:
            raise UserError(f"{job.pose}: the file gives no frame rate: pass --fps")
        sel = self.selection(raw)
        n_dims = self._dims(raw, job.pose)
        kp, conf = _clean(*raw.take(sel.index, n_dims), job.pose)
        target = self.opts.target_fps
        if target is not None and abs(target - fps) > 1e-6:
            kp, conf, siglip = resample(kp, conf, siglip, fps, target)
            fps = target
        return Loaded(job, kp.astype(np.float16), conf.astype(np.float16),
                      None if siglip is None else siglip.astype(np.float16), fps, sel, raw.channels[:n_dims],
                      raw.channels[n_dims:], raw.people)

    def _dims(self, raw: RawClip, path: Path) -> int:
        have = raw.keypoints.shape[2]
        if self.opts.dims is not None:
            if self.opts.dims > have:
                raise UserError(f"{path}: --dims {self.opts.dims} but the file has {have} coordinate "
                                f"channels ({raw.channels})")
            return self.opts.dims
        if path.suffix.lower() != ".pose":  # arrays: every channel is a coordinate
            return have
        # .pose files keep their spatial channels: MediaPipe with Kinect depth is XYZK, K in other units
        spatial = len(raw.channels) - len(raw.channels.lstrip("XYZ"))
        return spatial or have


def _read_siglip(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({type(e).__name__})") from None
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{path}: SigLIP features must be a float [frames, dim] array, "
                        f"got {arr.dtype} {arr.shape}")
    out = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(out).all() or np.abs(out).max(initial=0) > FLOAT16_MAX:
        raise UserError(f"{path}: SigLIP features contain NaN/inf or values beyond float16 range")
    return out


def _clean(kp: np.ndarray, conf: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Missing points (confidence not > 0, or coordinates not finite) get confidence 0 and coordinates 0,
    in place (``kp`` and ``conf`` are the clip's own copies)."""
    missing = ~(conf > 0) | ~np.isfinite(kp).all(-1)
    kp[missing] = 0
    conf[missing] = 0
    if np.abs(kp).max(initial=0) > FLOAT16_MAX:  # the packed format stores float16
        raise UserError(f"{path}: coordinates beyond float16 range (max {np.abs(kp).max():.4g}); "
                        f"rescale them")
    return kp, conf


def _read_clips(jobs: list[Job], reader: _ClipReader, workers: int,
                progress: Progress | None) -> tuple[list[Loaded], list[Skip]]:
    """Read every job on a thread pool; results kept in job order; the first error stops the rest."""
    results: list[Loaded | Skip | None] = [None] * len(jobs)
    if progress is not None:
        progress(0, len(jobs))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(reader, job): i for i, job in enumerate(jobs)}
        try:
            for done, fut in enumerate(as_completed(futures), 1):
                results[futures[fut]] = fut.result()
                if progress is not None:
                    progress(done, len(jobs))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    loaded = [r for r in results if isinstance(r, Loaded)]
    return loaded, [r for r in results if isinstance(r, Skip)]


def _check_consistent(clips: list[Loaded]) -> None:
    """One layout, one set of channels, one SigLIP width and one frame rate across all clips."""
    ref = clips[0]
    for c in clips[1:]:
        a, b = ref.selection.layout, c.selection.layout
        if a.names != b.names:
            raise UserError(f"clips have different point layouts: {ref.job.pose.name} has {len(a.names)} "
                            f"points ({a.name}), {c.job.pose.name} has {len(b.names)} ({b.name}); import "
                            f"them separately or choose a --preset they share")
        if ref.channels != c.channels:
            fewer = min(len(ref.channels), len(c.channels))
            raise UserError(f"clips have different coordinate channels: {ref.job.pose.name} {ref.channels}, "
                            f"{c.job.pose.name} {c.channels} (pass --dims {fewer})")
        if _width(ref.siglip) != _width(c.siglip):
            raise UserError(f"SigLIP features differ in width: {ref.job.siglip} {_width(ref.siglip)}, "
                            f"{c.job.siglip} {_width(c.siglip)}")
        if abs(ref.fps - c.fps) > 1e-6:
            raise UserError(f"clips have different frame rates: {ref.job.pose.name} {ref.fps:g} fps, "
                            f"{c.job.pose.name} {c.fps:g} fps (pass --target-fps to resample them to one)")


def _width(siglip: np.ndarray | None) -> int:
    return 0 if siglip is None else int(siglip.shape[1])


def _notes(clips: list[Loaded], layout: Layout) -> list[str]:
    notes = []
    several = sum(c.people > 1 for c in clips)
    if several:
        notes.append(f"{several} clip(s) show several people; the first person was kept")
    dropped = sorted({c.dropped for c in clips if c.dropped})
    if dropped:
        notes.append(f"coordinate channel(s) {', '.join(dropped)} not kept (they are not image coordinates); "
                     f"keep them with --dims")
    if layout.shoulders is None:
        notes.append("the layout names no shoulders: the trainer centres each clip on its mean point and "
                     "does not rescale it (give --shoulders LEFT,RIGHT for unnamed array points)")
    return notes


def _meta(opts: ImportOptions, ref: Loaded, captions: list[dict[str, str]], skipped: list[Skip],
          notes: list[str]) -> dict[str, Any]:
    try:
        pf_version = version("pose-format")
    except PackageNotFoundError:
        pf_version = "unknown"
    return {
        "source": "import",
        "layout": ref.selection.layout.to_meta(),
        "fps": ref.fps,
        "channels": list(ref.channels),
        "provenance": {"tool": f"vlp-sweep {__version__}", "pose_format": pf_version, "captions": captions,
                       "poses": [str(p.resolve()) for p in opts.poses],
                       "siglip": str(opts.siglip.resolve()) if opts.siglip else None, "preset": opts.preset,
                       "family": ref.selection.family, "target_fps": opts.target_fps,
                       "id_pattern": opts.id_pattern},
        "import": {"skipped": [s.to_dict() for s in skipped], "notes": notes},
    }


def _to_pack(c: Loaded) -> dict[str, Any]:
    # captions from several layouts: a column one of them lacks (gloss, signer) is NaN for its rows
    return {"id": c.job.id, **{k: ("" if pd.isna(v) else v) for k, v in c.job.caption.items()},
            "keypoints": c.keypoints, "confidence": c.confidence, "siglip": c.siglip}


@dataclass
class _Plan:
    jobs: list[Job]  # clips found in every source, in captions order
    skipped: list[Skip]  # ids left out by matching
    captions_used: list[dict[str, str]]  # provenance of each captions file
    n_captions: int
    n_files: int


def _plan(opts: ImportOptions) -> _Plan:
    """Captions, pose files and SigLIP files by id, matched; nothing is read beyond names yet."""
    captions, used = _read_all_captions(opts)
    pattern = compile_pattern(opts.id_pattern)
    found = find_files(opts.poses, POSE_SUFFIXES, "pose file or array")
    pose_files = _outside(found, opts.poses, opts.out, opts.siglip, opts.text_features)
    poses, skipped = index_by_id(pose_files, pattern, SEVERAL_FILES)
    siglip = None
    if opts.siglip is not None:
        sig_files = find_files([opts.siglip], (".npy",), "SigLIP .npy file")
        siglip, more = index_by_id(sig_files, pattern, SEVERAL_SIGLIP)
        skipped += more
    jobs, more = match(captions, poses, siglip, ambiguous={s.id for s in skipped})
    return _Plan(jobs, skipped + more, used, len(captions), len(pose_files))


def import_dataset(opts: ImportOptions, progress: Progress | None = None) -> ImportResult:
    """Import captions + poses (+ SigLIP) into a packed dataset at ``opts.out``; see the module doc."""
    check_options(opts)
    plan = _plan(opts)
    workers = opts.workers or min(8, os.cpu_count() or 1)
    clips, more = _read_clips(plan.jobs, _ClipReader(opts), workers, progress)
    skipped = plan.skipped + more
    if not clips:
        counts = ", ".join(f"{n} {r}" for r, n in Counter(s.reason for s in skipped).most_common())
        raise UserError(f"no clip left after matching {plan.n_captions} caption rows with {plan.n_files} "
                        f"pose files ({counts or 'nothing to match'})")
    _check_consistent(clips)
    ref = clips[0]
    notes = _notes(clips, ref.selection.layout)
    meta = _meta(opts, ref, plan.captions_used, skipped, notes)
    manifest, kp, conf, sig = pack_clips([_to_pack(c) for c in clips])
    clips.clear()  # the packed arrays hold the data now: free the per-clip copies before writing
    text = None
    if opts.text_features is not None:
        text = read_text_features(opts.text_features, manifest["id"].astype(str).tolist(),
                                  compile_pattern(opts.id_pattern))
    write_packed(opts.out, manifest, kp, conf, sig, meta, overwrite=opts.overwrite, text_features=text)
    splits = {str(k): int(v) for k, v in manifest["split"].value_counts(sort=False).items()}
    return ImportResult(opts.out, len(manifest), int(len(kp)), splits, ref.selection.layout, ref.channels,
                        ref.fps, _width(sig), 0 if text is None else int(text.shape[1]), skipped, notes)

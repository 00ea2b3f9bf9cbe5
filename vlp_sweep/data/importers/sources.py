"""Finding the files of each source, naming them by clip id, and matching captions, poses and SigLIP.

Every clip that does not make it into the dataset becomes a :class:`Skip` with its reason, so the
import summary can account for all of them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vlp_sweep.errors import UserError

POSE_SUFFIXES = (".pose", ".npy", ".npz")

# Skip reasons, in the order the summary lists them.
NO_POSE = "no pose file"
NO_CAPTION = "no caption"
EMPTY_CAPTION = "empty caption"
DUPLICATE_CAPTION = "duplicate caption id"
SEVERAL_FILES = "id in several pose files"
SEVERAL_SIGLIP = "id in several SigLIP files"
NO_SIGLIP = "no SigLIP features"
SIGLIP_ONLY = "SigLIP features only"
NO_FRAMES = "no frames"
SIGLIP_MISMATCH = "frame-count mismatch with SigLIP features"
REASONS = (NO_POSE, NO_CAPTION, EMPTY_CAPTION, DUPLICATE_CAPTION, SEVERAL_FILES, SEVERAL_SIGLIP, NO_SIGLIP,
           SIGLIP_ONLY, NO_FRAMES, SIGLIP_MISMATCH)


@dataclass(frozen=True)
class Skip:
    id: str
    reason: str  # one of REASONS
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Job:
    """One clip to read: its caption row and its files."""

    id: str
    caption: dict[str, Any]  # split, text[, gloss, signer]
    pose: Path
    siglip: Path | None


def find_files(paths: Iterable[Path], suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files given directly, or found under folders (recursively), with one of ``suffixes``; sorted."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += [f for f in p.rglob("*") if f.suffix.lower() in suffixes and f.is_file()]
        elif p.is_file():
            if p.suffix.lower() not in suffixes:
                raise UserError(f"{p}: not a {what} ({'/'.join(suffixes)})")
            found.append(p)
        else:
            raise UserError(f"{what} path not found: {p}")
    return sorted(set(found))


def clip_id(path: Path, pattern: re.Pattern[str] | None) -> str:
    """The stem, or the pattern's first group when the pattern matches the whole stem."""
    m = pattern.fullmatch(path.stem) if pattern is not None else None
    return m.group(1) if m else path.stem


def index_by_id(files: list[Path], pattern: re.Pattern[str] | None,
                several: str) -> tuple[dict[str, Path], list[Skip]]:
    """id -> file; an id that several files claim is skipped (which one is meant is not ours to guess)."""
    by_id: dict[str, list[Path]] = {}
    for f in files:
        by_id.setdefault(clip_id(f, pattern), []).append(f)
    skips = [Skip(i, several, ", ".join(str(f) for f in fs)) for i, fs in by_id.items() if len(fs) > 1]
    return {i: fs[0] for i, fs in by_id.items() if len(fs) == 1}, skips


def _dedup_captions(captions: pd.DataFrame) -> tuple[pd.DataFrame, list[Skip]]:
    dup = captions["id"].duplicated(keep="first").to_numpy()
    skips = [Skip(str(r.id), DUPLICATE_CAPTION, f"row with split {r.split} dropped, the first row kept")
             for r in captions[dup].itertuples()]
    return captions[~dup], skips


def match(captions: pd.DataFrame, poses: dict[str, Path], siglip: dict[str, Path] | None,
          ambiguous: Collection[str] = ()) -> tuple[list[Job], list[Skip]]:
    """Clips present in every source, in captions order, and a Skip for each id that is not.

    ``ambiguous`` ids were already skipped because several files claim them: not reported twice.
    """
    captions, skips = _dedup_captions(captions)
    jobs: list[Job] = []
    for row in captions.to_dict("records"):
        cid = str(row["id"])
        if cid in ambiguous:
            continue
        if not str(row["text"]).strip():
            skips.append(Skip(cid, EMPTY_CAPTION))
        elif cid not in poses:
            skips.append(Skip(cid, NO_POSE))
        elif siglip is not None and cid not in siglip:
            skips.append(Skip(cid, NO_SIGLIP, str(poses[cid])))
        else:
            fields = {str(k): v for k, v in row.items() if k != "id"}
            jobs.append(Job(cid, fields, poses[cid], siglip[cid] if siglip is not None else None))
    captioned = set(captions["id"].astype(str))
    skips += [Skip(i, NO_CAPTION, str(p)) for i, p in poses.items() if i not in captioned]
    if siglip is not None:
        skips += [Skip(i, SIGLIP_ONLY, str(p)) for i, p in siglip.items()
                  if i not in captioned and i not in poses]
    return jobs, skips


def compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise UserError(f"--id-pattern: not a regular expression: {pattern!r} ({e})") from None
    if rx.groups < 1:
        raise UserError(f"--id-pattern needs a group that captures the clip id, e.g. 'prefix_(.+)'; "
                        f"got {pattern!r}")
    return rx

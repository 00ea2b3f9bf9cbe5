"""Precomputed per-clip text features (e.g. a frozen sentence encoder's outputs): one ``<id>.npy`` per
clip, shape ``[D]`` or ``[1, D]``, matched to the imported clips by id like SigLIP features. Every
imported clip needs one, all of one width; the result is ``text_features.npy [n_clips, D]`` in manifest
order (see ``data.packed``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vlp_sweep.data.importers.sources import find_files, index_by_id
from vlp_sweep.errors import UserError


def read_text_features(folder: Path, ids: list[str], pattern: re.Pattern[str] | None) -> np.ndarray:
    """``[len(ids), D]`` float16, row i the features of clip ``ids[i]``; a missing, ambiguous, malformed
    or differently sized file is one line naming it."""
    files, several = index_by_id(find_files([folder], (".npy",), "text feature .npy file"), pattern, "several")
    if several:
        raise UserError(f"--text-features: several files for clip '{several[0].id}': {several[0].detail}")
    missing = [i for i in ids if i not in files]
    if missing:
        raise UserError(f"--text-features: no <id>.npy in {folder} for {len(missing)} of {len(ids)} clips "
                        f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): every clip needs one")
    rows = [_one(files[i]) for i in ids]
    width = rows[0].shape[0]
    for i, r in zip(ids, rows):
        if r.shape[0] != width:
            raise UserError(f"--text-features: {files[i]} has {r.shape[0]} values, {files[ids[0]]} has {width}: "
                            "every clip's features need one width")
    return np.stack(rows).astype(np.float16)


def _one(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None
    if a.ndim == 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.number):
        raise UserError(f"{path}: expected text features of shape [D] or [1, D], got {a.dtype} {list(a.shape)}")
    if not np.isfinite(a).all():
        raise UserError(f"{path}: contains NaN or inf values")
    return a.astype(np.float32)

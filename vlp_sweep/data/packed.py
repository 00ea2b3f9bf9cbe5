"""The packed dataset format: a folder, memory-mappable, fast to load whole.

    manifest.parquet   one row per clip: id, split, text, n_frames, offset [, gloss, signer]
    keypoints.npy      [sum_frames, K, C] float16, raw coordinates (the trainer normalises)
    confidence.npy     [sum_frames, K] float16, 0 = missing point
    siglip.npy         optional [sum_frames, D] float16 per-frame visual features
    text_features.npy  optional [n_clips, D] float16 per-clip text features, row i = manifest row i
    meta.json          format, layout (point names, groups, shoulder indices), fps, dims,
                       provenance, content_hash

Clip ``i`` owns frames ``offset[i] : offset[i] + n_frames[i]`` of every array.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.errors import UserError

FORMAT = "vlp-sweep/packed/1"
REQUIRED_COLUMNS = ("id", "split", "text", "n_frames", "offset")


@dataclass
class PackedDataset:
    root: Path
    manifest: pd.DataFrame
    keypoints: np.ndarray  # [F, K, C] float16 (memory-mapped)
    confidence: np.ndarray  # [F, K] float16
    siglip: np.ndarray | None  # [F, D] float16
    meta: dict[str, Any]
    text_features: np.ndarray | None = None  # [N, D] float16, row i = manifest row i

    @property
    def text_feature_dim(self) -> int:
        return 0 if self.text_features is None else int(self.text_features.shape[1])

    @property
    def n_points(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def dims(self) -> int:
        return int(self.keypoints.shape[2])

    @property
    def siglip_dim(self) -> int:
        return 0 if self.siglip is None else int(self.siglip.shape[1])

    def split(self, name: str) -> pd.DataFrame:
        """The manifest rows of one split, in file order; an empty split is a user error."""
        rows = self.manifest[self.manifest["split"] == name]
        if rows.empty:
            have = sorted(self.manifest["split"].unique())
            raise UserError(f"{self.root}: split '{name}' has no clips (splits: {', '.join(have)})")
        return rows.reset_index(drop=True)


def _load_npy(path: Path, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{path.parent}: missing {path.name}")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e})") from None


def _read_manifest(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"{path.parent}: missing manifest.parquet")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise UserError(f"{path}: not a readable Parquet file ({type(e).__name__})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: manifest is missing column(s) {', '.join(missing)}")
    return df


def load_packed(path: str | os.PathLike[str], *, mmap: bool = True, check_values: bool = True) -> PackedDataset:
    """Open and validate a packed dataset; every problem is a :class:`UserError` naming it."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"data folder not found: {root} (make one with `vlp-sweep data synth --out {root}`)")
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise UserError(f"{root}: missing meta.json (not a packed dataset)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{meta_path}: not valid JSON ({e})") from None
    manifest = _read_manifest(root / "manifest.parquet")
    kp = _load_npy(root / "keypoints.npy", mmap)
    conf = _load_npy(root / "confidence.npy", mmap)
    sig = _load_npy(root / "siglip.npy", mmap) if (root / "siglip.npy").exists() else None
    text = _load_npy(root / "text_features.npy", mmap) if (root / "text_features.npy").exists() else None
    ds = PackedDataset(root, manifest, kp, conf, sig, meta, text)
    validate(ds, check_values=check_values)
    return ds


def validate(ds: PackedDataset, *, check_values: bool = True) -> None:
    """Shapes, offsets and (optionally) finiteness; raises :class:`UserError` on the first problem."""
    root, m, kp, conf = ds.root, ds.manifest, ds.keypoints, ds.confidence
    if kp.ndim != 3:
        raise UserError(f"{root}/keypoints.npy: expected [frames, points, dims], got shape {kp.shape}")
    if conf.shape != kp.shape[:2]:
        raise UserError(f"{root}/confidence.npy: shape {conf.shape} does not match keypoints {kp.shape[:2]}")
    if ds.siglip is not None and (ds.siglip.ndim != 2 or len(ds.siglip) != len(kp)):
        raise UserError(f"{root}/siglip.npy: shape {ds.siglip.shape} does not match {len(kp)} frames")
    if m.empty:
        raise UserError(f"{root}: manifest has no clips")
    if ds.text_features is not None and (ds.text_features.ndim != 2 or len(ds.text_features) != len(m)):
        raise UserError(f"{root}/text_features.npy: shape {ds.text_features.shape} does not match {len(m)} clips "
                        "(one row per manifest row)")
    n = m["n_frames"].to_numpy()
    off = m["offset"].to_numpy()
    if (n <= 0).any():
        bad = m.loc[n <= 0, "id"].iloc[0]
        raise UserError(f"{root}: clip '{bad}' has zero frames")
    if (off < 0).any() or (off + n > len(kp)).any():
        bad = m.loc[(off < 0) | (off + n > len(kp)), "id"].iloc[0]
        raise UserError(f"{root}: clip '{bad}' has offsets past the end of keypoints.npy ({len(kp)} frames)")
    if m["id"].duplicated().any():
        raise UserError(f"{root}: duplicate clip id '{m.loc[m['id'].duplicated(), 'id'].iloc[0]}'")
    if check_values:
        for name, arr in (("keypoints", kp), ("confidence", conf), ("siglip", ds.siglip),
                          ("text_features", ds.text_features)):
            if arr is not None and not _all_finite(arr):
                raise UserError(f"{root}/{name}.npy: contains NaN or inf values")


def _all_finite(arr: np.ndarray, block: int = 1 << 20) -> bool:
    flat = arr.reshape(len(arr), -1)
    rows = max(1, block // max(1, flat.shape[1]))
    return all(np.isfinite(flat[i:i + rows]).all() for i in range(0, len(flat), rows))


def content_hash(root: Path) -> str:
    """sha256 over the data files in a fixed order (meta.json excluded: it stores the hash)."""
    h = hashlib.sha256()
    for name in ("manifest.parquet", "keypoints.npy", "confidence.npy", "siglip.npy", "text_features.npy"):
        p = root / name
        if p.exists():
            h.update(name.encode())
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
    return h.hexdigest()


def write_packed(out: str | os.PathLike[str], manifest: pd.DataFrame, keypoints: np.ndarray,
                 confidence: np.ndarray, siglip: np.ndarray | None, meta: dict[str, Any],
                 *, overwrite: bool = False, text_features: np.ndarray | None = None) -> Path:
    """Write a packed dataset atomically: a temporary sibling folder renamed into place when complete."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    if out.exists() and not out.is_dir():
        raise UserError(f"output path is a file: {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        manifest = manifest.reset_index(drop=True)
        manifest.to_parquet(tmp / "manifest.parquet", index=False)
        np.save(tmp / "keypoints.npy", np.ascontiguousarray(keypoints, dtype=np.float16))
        np.save(tmp / "confidence.npy", np.ascontiguousarray(confidence, dtype=np.float16))
        if siglip is not None:
            np.save(tmp / "siglip.npy", np.ascontiguousarray(siglip, dtype=np.float16))
        if text_features is not None:
            np.save(tmp / "text_features.npy", np.ascontiguousarray(text_features, dtype=np.float16))
        full_meta = {"format": FORMAT, **meta, "n_points": int(keypoints.shape[1]), "dims": int(keypoints.shape[2]),
                     "siglip_dim": 0 if siglip is None else int(siglip.shape[1]), "n_clips": len(manifest),
                     "text_feature_dim": 0 if text_features is None else int(text_features.shape[1]),
                     "n_frames": int(len(keypoints)), "content_hash": content_hash(tmp)}
        (tmp / "meta.json").write_text(json.dumps(full_meta, indent=2))
        load_packed(tmp)  # validates what was written before it becomes visible
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def pack_clips(clips: list[dict[str, Any]]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray | None]:
    """Concatenate per-clip arrays into packed arrays and a manifest with offsets.

    Each clip dict has ``id, split, text, keypoints [T,K,C], confidence [T,K]`` and optionally
    ``siglip [T,D]``, ``gloss``, ``signer``. SigLIP must be given for all clips or none.
    """
    if not clips:
        raise UserError("no clips to pack")
    rows, offset = [], 0
    for c in clips:
        t = len(c["keypoints"])
        row = {"id": str(c["id"]), "split": str(c["split"]), "text": str(c["text"]), "n_frames": t, "offset": offset}
        for extra in ("gloss", "signer"):
            if extra in c:
                row[extra] = c[extra]
        rows.append(row)
        offset += t
    kp = np.concatenate([np.asarray(c["keypoints"], dtype=np.float16) for c in clips])
    conf = np.concatenate([np.asarray(c["confidence"], dtype=np.float16) for c in clips])
    has_sig = ["siglip" in c and c["siglip"] is not None for c in clips]
    if any(has_sig) and not all(has_sig):
        missing = next(c["id"] for c, h in zip(clips, has_sig) if not h)
        raise UserError(f"SigLIP features given for some clips but not for '{missing}': all clips or none")
    sig = np.concatenate([np.asarray(c["siglip"], dtype=np.float16) for c in clips]) if all(has_sig) else None
    df = pd.DataFrame(rows)
    df["n_frames"] = df["n_frames"].astype("int64")
    df["offset"] = df["offset"].astype("int64")
    return df, kp, conf, sig

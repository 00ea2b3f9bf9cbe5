"""Reading one ``.npy`` / ``.npz`` array clip ``[T, K, C]`` and naming its points.

``.npy``: coordinates only, or with ``confidence_last`` the last channel is confidence.
``.npz``: ``keypoints`` [T, K, C] (or the archive's only array), optional ``confidence`` [T, K] and
``fps`` (a scalar). Without a confidence, a point is missing where its coordinates are not finite
or all exactly zero (how exporters commonly fill undetected points).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pose_format.pose_header import PoseHeader

from vlp_sweep.data.importers.poses import RawClip
from vlp_sweep.data.importers.presets import generic_header, known_headers
from vlp_sweep.errors import UserError

ARRAY_LAYOUTS = ("auto", "holistic", "openpose", "generic")
_NPZ_META = ("confidence", "fps")


def _load(path: Path) -> tuple[np.ndarray, np.ndarray | None, float | None]:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False), None, None
        with np.load(path, allow_pickle=False) as z:
            keys = [k for k in z.files if k not in _NPZ_META]
            key = "keypoints" if "keypoints" in z.files else keys[0] if len(keys) == 1 else None
            if key is None:
                raise UserError(f"{path}: no 'keypoints' array (arrays: {', '.join(z.files) or 'none'})")
            conf = z["confidence"] if "confidence" in z.files else None
            fps = float(z["fps"]) if "fps" in z.files else None
            return z[key], conf, fps
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, TypeError) as e:
        raise UserError(f"{path}: not a readable {path.suffix} array ({type(e).__name__})") from None


def read_array(path: Path, *, confidence_last: bool = False) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(keypoints [T, K, C] float32, confidence [T, K] float32, fps or None) of one array file."""
    arr, conf, fps = _load(path)
    numeric = np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.complexfloating)
    if arr.ndim != 3 or not numeric:
        raise UserError(f"{path}: expected a numeric [frames, points, channels] array, "
                        f"got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float32)
    if confidence_last and path.suffix.lower() == ".npy":
        if arr.shape[2] < 2:
            raise UserError(f"{path}: --npy-confidence needs at least 2 channels, got {arr.shape[2]}")
        arr, conf = arr[..., :-1], arr[..., -1]
    if conf is None:
        missing = ~np.isfinite(arr).all(-1) | (arr == 0).all(-1)
        conf = (~missing).astype(np.float32)
    elif conf.shape != arr.shape[:2]:
        raise UserError(f"{path}: confidence shape {conf.shape} does not match keypoints {arr.shape[:2]}")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise UserError(f"{path}: fps must be a positive number, got {fps}")
    return arr, np.asarray(conf, dtype=np.float32), fps


def array_header(n_points: int, dims: int, spec: str, reference: PoseHeader | None = None) -> PoseHeader:
    """Point names for an array clip: from a reference .pose header, a named layout, or by point count."""
    if reference is not None:
        if reference.total_points() != n_points:
            raise UserError(f"--array-layout file has {reference.total_points()} points, "
                            f"the arrays {n_points}")
        return reference
    if spec not in ARRAY_LAYOUTS:
        raise UserError(f"--array-layout must be a .pose file or one of {', '.join(ARRAY_LAYOUTS)}, "
                        f"got {spec!r}")
    known = known_headers(dims)
    if spec == "generic" or (spec == "auto" and n_points not in known):
        return generic_header(n_points, dims)
    counts = {"auto": tuple(known), "holistic": (543, 178), "openpose": (137,)}[spec]
    if n_points not in counts:
        raise UserError(f"--array-layout {spec} has {' or '.join(map(str, counts))} points; "
                        f"the arrays have {n_points}")
    return known[n_points]


def read_array_clip(path: Path, spec: str, reference: PoseHeader | None, *,
                    confidence_last: bool = False) -> RawClip:
    kp, conf, fps = read_array(path, confidence_last=confidence_last)
    header = array_header(kp.shape[1], kp.shape[2], spec, reference)
    channels = "XYZ"[: kp.shape[2]] if kp.shape[2] <= 3 else "XYZ" + "W" * (kp.shape[2] - 3)
    return RawClip(kp, conf, fps, header, channels)

"""Resampling one clip to a target frame rate.

Coordinates and confidence are interpolated linearly between the two neighbouring source frames
where the point is present in both; otherwise the nearest frame is taken as is, so a missing point
stays missing and no point is invented across a gap. SigLIP features come from the nearest frame:
an embedding halfway between two frames' embeddings is not the embedding of any image.
"""

from __future__ import annotations

import numpy as np


def frame_positions(n_frames: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """Source positions (fractional frame indices) of the resampled frames; same duration, >= 1 frame."""
    n_out = max(1, round(n_frames * dst_fps / src_fps))
    return np.minimum(np.arange(n_out) * (src_fps / dst_fps), n_frames - 1)


def resample(keypoints: np.ndarray, confidence: np.ndarray, siglip: np.ndarray | None, src_fps: float,
             dst_fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``keypoints [T, K, C]``, ``confidence [T, K]``, ``siglip [T, D]`` at ``dst_fps``."""
    t = len(keypoints)
    pos = frame_positions(t, src_fps, dst_fps)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, t - 1)
    w = (pos - i0).astype(np.float32)
    nearest = np.where(w < 0.5, i0, i1)
    kp0, kp1 = keypoints[i0].astype(np.float32), keypoints[i1].astype(np.float32)
    c0, c1 = confidence[i0].astype(np.float32), confidence[i1].astype(np.float32)
    both = (c0 > 0) & (c1 > 0)  # [n, K]
    lerp_kp = kp0 + (kp1 - kp0) * w[:, None, None]
    lerp_c = c0 + (c1 - c0) * w[:, None]
    kp = np.where(both[..., None], lerp_kp, keypoints[nearest])
    conf = np.where(both, lerp_c, confidence[nearest])
    sig = siglip[nearest] if siglip is not None else None
    return kp, conf, sig

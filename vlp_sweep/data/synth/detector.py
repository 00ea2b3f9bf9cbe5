"""Detector behaviour: keypoint jitter, confidence, and hands that go missing in bursts."""

from __future__ import annotations

import numpy as np

from vlp_sweep.data.synth.knobs import SynthParams
from vlp_sweep.data.synth.motion import State
from vlp_sweep.data.synth.signers import Signers
from vlp_sweep.data.synth.timeline import Timeline


def _bursty(rng: np.random.Generator, n: int, width: int = 9) -> np.ndarray:
    """Unit-variance noise correlated over ~``width`` frames: thresholding it gives bursts."""
    k = np.hanning(width + 2)[1:-1]
    z = np.convolve(rng.standard_normal(n + width), k, mode="same")[width // 2: width // 2 + n]
    return z / np.sqrt((k ** 2).sum())


def _speed(xy: np.ndarray, clip: np.ndarray) -> np.ndarray:
    v = np.zeros(len(xy))
    v[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    first = np.r_[True, clip[1:] != clip[:-1]]
    v[first] = np.r_[v[1:], 0.0][first]  # a clip's first frame borrows the next frame's speed
    return v


def _missing(score: np.ndarray, rate: float) -> np.ndarray:
    """The ``rate`` share of frames with the highest score (exact share, robust to every knob)."""
    if rate <= 0:
        return np.zeros(len(score), dtype=bool)
    return score > np.quantile(score, 1 - rate)


def detector(body: np.ndarray, st: State, tl: Timeline, s: np.ndarray, sg: Signers, p: SynthParams,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jitter and confidence (0 = missing) of canonical points ``[F, 50, 2]`` (body units), per frame.

    ``s`` is each frame's signer. The other hand is points 8..28, the dominant hand 29..49.
    """
    f = len(body)
    jit = (p.noise * sg.jitter[s])[:, None, None]
    # Large draws in float32: half the cost, and the output is float16 anyway.
    xy = body + jit * (0.012 * rng.standard_normal(body.shape, dtype=np.float32))
    for lo, hi in ((8, 29), (29, 50)):
        xy[:, lo:hi] += jit * rng.normal(0, 0.015, (f, 1, 2))  # the whole hand wobbles between frames
    z_dom, z_nd = (_zscore(_speed(h, tl.clip)) for h in (st.dom, st.nd))
    # Fast hands blur and a resting hand leaves the frame: both go missing more, in bursts.
    miss_dom = _missing(_bursty(rng, f) + 0.7 * z_dom + sg.miss_bias[s, 0], p.missing_dominant)
    miss_nd = _missing(_bursty(rng, f) + 0.7 * z_nd + 1.5 * st.nd_rest + sg.miss_bias[s, 1], p.missing_other)
    conf = 1.0 - 0.45 * rng.random((f, 50), dtype=np.float32) ** 2
    conf[:, 8:29] -= 0.05 * np.clip(z_nd, 0, 3)[:, None]
    conf[:, 29:50] -= 0.05 * np.clip(z_dom, 0, 3)[:, None]
    conf = np.clip(conf, 0.51, 1.0)
    for miss, lo, hi in ((miss_nd, 8, 29), (miss_dom, 29, 50)):
        conf[miss, lo:hi] = 0.0
    return xy, conf


def _zscore(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 1e-9)

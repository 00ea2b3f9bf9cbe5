"""Batch plans, made on the host: which clips a batch holds and which of their frames, decided with numpy
from the lengths the data already holds, so that building and encoding a batch never waits for the device.

A plan lists, for a batch's clips in order, the source frame row and the slot (the frame's position,
0 .. max_frames - 1, which picks its positional embedding) of every frame the model sees, packed: clip
``i``'s frames are entries ``cu[i]:cu[i + 1]``. No padding is listed, so none is computed. The same plan
gives the padded ``[B, T]`` view a model of your own receives (:meth:`FramePlan.padded`).

Option A (MAX_FRAMES) and the time-axis part of option E (speed, frame masking) are decided here, per
clip, from a ``numpy.random.Generator`` seeded per (seed, epoch, rank); the keypoint-level augmentation
(affine, noise, joint masking) is drawn on the device (``augment.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlp_sweep.config import AugConfig


@dataclass(frozen=True)
class FramePlan:
    """The frames of one batch of ``len(clips)`` clips (all arrays int64, on the host)."""

    clips: np.ndarray  # [B] split row of each clip
    rows: np.ndarray  # [N] frame row of each kept frame, relative to its clip's first frame
    slots: np.ndarray  # [N] position of each kept frame (0 .. max_frames - 1)
    cu: np.ndarray  # [B + 1] cumulative frame counts: clip i owns entries cu[i]:cu[i + 1]
    max_frames: int  # T of the padded view

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.cu)

    def __len__(self) -> int:
        return len(self.clips)

    def select(self, start: int, stop: int) -> FramePlan:
        """The plan of clips ``start:stop`` (a micro-batch, or a chunk of the out-of-memory rescue)."""
        lo, hi = int(self.cu[start]), int(self.cu[stop])
        return FramePlan(self.clips[start:stop], self.rows[lo:hi], self.slots[lo:hi],
                         self.cu[start:stop + 1] - lo, self.max_frames)

    def padded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows [B, T], valid [B, T])``: the padded view (rows of unused slots point at the clip's first
        frame; ``valid`` says which slots hold a frame)."""
        b, t = len(self.clips), self.max_frames
        clip_of = np.repeat(np.arange(b), self.lengths)
        rows = np.zeros((b, t), np.int64)
        valid = np.zeros((b, t), bool)
        rows[clip_of, self.slots] = self.rows
        valid[clip_of, self.slots] = True
        return rows, valid


def frame_windows(length: np.ndarray, max_frames: int, sampling: str, speed: np.ndarray | None,
                  start_u: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Which source frame feeds each slot: ``(pos [B, T], n_out [B])`` (pos within the clip; slots from
    ``n_out`` on are empty).

    crop: a window of ``max_frames`` (a random one when ``start_u``, uniform draws in [0, 1), is given;
    else the centre); uniform: evenly spaced frames over the whole clip. ``speed`` (per clip, e.g. 1.1)
    resamples the window at that rate (option E's temporal jitter); None = 1.
    """
    length = length.astype(np.float64)
    rate = np.ones_like(length) if speed is None else speed
    whole = (length > max_frames) & (sampling == "uniform")
    span = np.where(whole, length, np.minimum(max_frames * rate, length))
    n_out = np.where(whole, max_frames, np.clip(np.floor(span / rate), 1, max_frames)).astype(np.int64)
    room = length - span  # >= 0: how far the window can slide
    if start_u is not None and sampling == "crop":
        start = np.minimum(np.floor(start_u * (room + 1)), room)
    else:
        start = np.floor(room / 2)
    step = span / n_out
    slots = np.arange(max_frames, dtype=np.float64)
    pos = np.floor(start[:, None] + slots[None] * step[:, None]).astype(np.int64)
    pos = np.minimum(pos, (length.astype(np.int64) - 1)[:, None])
    return pos, n_out


def plan_frames(clips: np.ndarray, length: np.ndarray, max_frames: int, sampling: str,
                aug: AugConfig | None = None, rng: np.random.Generator | None = None) -> FramePlan:
    """The plan of ``clips`` (split rows) with clip lengths ``length`` (of the whole split). Training
    (``aug`` and ``rng`` given): a random window, speed and frame masks per clip; evaluation: the centre."""
    lens = length[clips]
    b = len(clips)
    speed = start_u = drop = None
    if aug is not None and rng is not None:
        if aug.speed > 0:
            speed = 1 + (rng.random(b) * 2 - 1) * aug.speed
        start_u = rng.random(b)
        if aug.frame_mask_prob > 0:
            drop = rng.random((b, max_frames)) < aug.frame_mask_prob
            drop[:, 0] = False  # keep at least one frame per clip
    pos, n_out = frame_windows(lens, max_frames, sampling, speed, start_u)
    keep = np.arange(max_frames)[None] < n_out[:, None]
    if drop is not None:
        keep &= ~drop
    clip_idx, slots = np.nonzero(keep)  # row-major: every clip's frames together, in slot order
    counts = keep.sum(1)
    cu = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return FramePlan(np.asarray(clips, np.int64), pos[clip_idx, slots], slots.astype(np.int64), cu, max_frames)


def epoch_rng(seed: int, epoch: int, rank: int = 0) -> tuple[np.random.Generator, np.random.Generator]:
    """(batch order, per-process batch draws) for one epoch: the order is the same on every process, so all
    draw one permutation; windows, speeds and frame masks differ per process (its own shard of each batch)."""
    order = np.random.default_rng([seed % 2**63, epoch, 0])
    draws = np.random.default_rng([seed % 2**63, epoch, rank, 2])
    return order, draws

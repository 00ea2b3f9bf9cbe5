"""Timing: rest, gloss, transition, gloss, ..., rest per clip, time-warped to the clip's length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlp_sweep.data.synth.glosses import GlossBank


@dataclass
class Timeline:
    """Per output frame: the two (gloss, phase, instance) ends of the motion and their blend."""

    clip: np.ndarray  # [F] clip index within the chunk
    g_a: np.ndarray  # [F] gloss index (bank row)
    u_a: np.ndarray  # [F] phase within the gloss, 0..1
    i_a: np.ndarray  # [F] instance index
    g_b: np.ndarray
    u_b: np.ndarray
    i_b: np.ndarray
    alpha: np.ndarray  # [F] blend weight of the b end (0 inside a gloss)


@dataclass
class Instances:
    """One performance of a gloss: small offsets so no two occurrences are identical."""

    offset: np.ndarray  # [I, 2]
    amp: np.ndarray  # [I]
    angle: np.ndarray  # [I]
    curl: np.ndarray  # [I, 6]


def _holds(seqs: list[np.ndarray], rest: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat hold segments (rest, glosses..., rest per clip) and each clip's first hold."""
    counts = np.array([len(s) + 2 for s in seqs])
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    g = np.concatenate([np.r_[rest, s, rest] for s in seqs]).astype(np.int64)
    return g, first


def build_timeline(seqs: list[np.ndarray], n_frames: np.ndarray, speed: np.ndarray, bank: GlossBank,
                   variation: float, rng: np.random.Generator) -> tuple[Timeline, Instances]:
    """Lay out each clip's segments in natural time and sample them at the clip's output frames."""
    hold_g, first = _holds(seqs, bank.rest)
    n_holds = np.diff(np.r_[first, len(hold_g)])
    clip_of_hold = np.repeat(np.arange(len(seqs)), n_holds)
    inst = Instances(offset=rng.normal(0, 0.06 * variation, (len(hold_g), 2)),
                     amp=np.exp(rng.normal(0, 0.15 * variation, len(hold_g))),
                     angle=rng.normal(0, 0.12 * variation, len(hold_g)),
                     curl=rng.normal(0, 0.05 * variation, (len(hold_g), 6)))
    is_rest = hold_g == bank.rest
    hold_dur = np.where(is_rest, rng.uniform(1, 4, len(hold_g)),
                        bank.dur[hold_g] * np.exp(rng.normal(0, 0.15 * variation, len(hold_g))))
    hold_dur = hold_dur / speed[clip_of_hold]
    # Segments interleave hold j and transition j -> j+1 (none after a clip's last hold).
    last = np.r_[first[1:], len(hold_g)] - 1
    has_trans = np.ones(len(hold_g), dtype=bool)
    has_trans[last] = False
    trans_dur = rng.uniform(2, 5, len(hold_g)) / speed[clip_of_hold]
    seg_hold = np.repeat(np.arange(len(hold_g)), 1 + has_trans)
    seg_kind = np.zeros(len(seg_hold), dtype=np.int8)
    seg_kind[1:][np.diff(seg_hold) == 0] = 1  # the second segment of a hold is its outgoing transition
    seg_dur = np.where(seg_kind == 1, trans_dur[seg_hold], hold_dur[seg_hold])
    seg_start = np.concatenate([[0.0], np.cumsum(seg_dur)[:-1]])
    clip_start = seg_start[np.searchsorted(seg_hold, first)]
    natural = np.add.reduceat(seg_dur, np.searchsorted(seg_hold, first))
    tl = _sample(seg_hold, seg_kind, seg_start, seg_dur, clip_start, natural, n_frames, hold_g, rng)
    return tl, inst


def _warp(x: np.ndarray, clip: np.ndarray, rng: np.random.Generator, n_clips: int) -> np.ndarray:
    """A random monotone time warp of [0, 1] per clip: the signer speeds up and slows down."""
    a = rng.uniform(-0.35, 0.35, n_clips)[clip]
    k = rng.integers(1, 3, n_clips)[clip]
    return x + a * np.sin(2 * np.pi * k * x) / (2 * np.pi * k)


def _sample(seg_hold: np.ndarray, seg_kind: np.ndarray, seg_start: np.ndarray, seg_dur: np.ndarray,
            clip_start: np.ndarray, natural: np.ndarray, n_frames: np.ndarray, hold_g: np.ndarray,
            rng: np.random.Generator) -> Timeline:
    clip = np.repeat(np.arange(len(n_frames)), n_frames)
    t = np.arange(len(clip)) - np.repeat(np.cumsum(n_frames) - n_frames, n_frames)
    x = _warp((t + 0.5) / n_frames[clip], clip, rng, len(n_frames))
    tau = clip_start[clip] + np.clip(x, 0, 1) * natural[clip]
    seg = np.clip(np.searchsorted(seg_start, tau, side="right") - 1, 0, len(seg_start) - 1)
    v = np.clip((tau - seg_start[seg]) / seg_dur[seg], 0, 1)
    trans = seg_kind[seg] == 1
    h = seg_hold[seg]
    h_b = np.where(trans, np.minimum(h + 1, len(hold_g) - 1), h)
    alpha = np.where(trans, v * v * (3 - 2 * v), 0.0)  # smoothstep between the two glosses
    return Timeline(clip=clip, g_a=hold_g[h], u_a=np.where(trans, 1.0, v), i_a=h, g_b=hold_g[h_b],
                    u_b=np.where(trans, 0.0, v), i_b=h_b, alpha=alpha)


def natural_lengths(seqs: list[np.ndarray], bank: GlossBank, speed: np.ndarray) -> np.ndarray:
    """Expected natural length of each sentence (for handing out target lengths by rank)."""
    d = np.array([bank.dur[s].sum() + 3.5 * (len(s) + 1) + 5.0 for s in seqs])
    return d / speed

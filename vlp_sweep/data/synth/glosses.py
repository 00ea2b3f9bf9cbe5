"""The gloss bank: each gloss's motion parameters, drawn from a hash of (seed, gloss name)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlp_sweep.data.synth.geometry import ANCHORS, HANDSHAPES, RELAXED, REST_XY

N_PATH = 3  # sinusoids per gloss path
EMB_DIM = 64  # gloss visual embedding before the SigLIP projection
TWO_HAND_P = np.array([0.45, 0.25, 0.15, 0.15])  # other hand: rest, mirrored, alternating, base hand


@dataclass
class GlossBank:
    """Per-gloss arrays; the last row is the rest pose (a pseudo-gloss used at clip start and end)."""

    names: list[str]
    loc: np.ndarray  # [G, 2]
    amp: np.ndarray  # [G, N_PATH, 2]
    freq: np.ndarray  # [G, N_PATH] cycles per gloss
    phase: np.ndarray  # [G, N_PATH]
    drift: np.ndarray  # [G, 2]
    curl0: np.ndarray  # [G, 6] handshape at the start (5 curls + spread)
    curl1: np.ndarray  # [G, 6] handshape at the end
    angle0: np.ndarray  # [G] hand axis angle, 0 = fingers up
    angle1: np.ndarray  # [G]
    two: np.ndarray  # [G] other hand: 0 rest, 1 mirrored, 2 alternating, 3 base hand
    nd_loc: np.ndarray  # [G, 2] base-hand location
    nd_curl: np.ndarray  # [G, 6]
    nd_angle: np.ndarray  # [G]
    dur: np.ndarray  # [G] frames at speed 1
    nod: np.ndarray  # [G] head nod amplitude
    emb: np.ndarray  # [G, EMB_DIM] visual embedding (location + handshape + mouthing)

    @property
    def rest(self) -> int:
        return len(self.names)


def _name_rng(seed: int, name: str) -> np.random.Generator:
    # A gloss's motion depends only on the seed and its name, not on the lexicon's order or size.
    digest = hashlib.sha256(f"vlp-sweep-synth:{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _one_gloss(rng: np.random.Generator) -> dict[str, Any]:
    anchor, shape = int(rng.integers(len(ANCHORS))), int(rng.integers(len(HANDSHAPES)))
    two = int(rng.choice(4, p=TWO_HAND_P))
    curl0 = np.clip(HANDSHAPES[shape] + rng.normal(0, 0.05, 6), 0, 1)
    # A third of the glosses change handshape during the sign (opening, closing).
    curl1 = np.clip(HANDSHAPES[rng.integers(len(HANDSHAPES))] + rng.normal(0, 0.05, 6), 0, 1) \
        if rng.random() < 0.33 else curl0
    nd_loc = np.array([0.1, 0.6]) + rng.normal(0, 0.08, 2)
    loc = ANCHORS[anchor] + rng.normal(0, 0.1, 2)
    if two == 3:  # the dominant hand acts on the base hand
        loc = nd_loc + np.array([-0.18, -0.15]) + rng.normal(0, 0.05, 2)
    angle0 = rng.uniform(-0.8, 0.8)
    return {"anchor": anchor, "shape": shape, "loc": loc, "amp": rng.normal(0, 0.14, (N_PATH, 2)),
            "freq": rng.choice([0.5, 1.0, 1.5, 2.0], N_PATH), "phase": rng.uniform(0, 2 * np.pi, N_PATH),
            "drift": rng.normal(0, 0.22, 2), "curl0": curl0, "curl1": curl1, "angle0": angle0,
            "angle1": angle0 + rng.normal(0, 0.4), "two": two, "nd_loc": nd_loc,
            "nd_curl": np.clip(HANDSHAPES[rng.integers(len(HANDSHAPES))] + rng.normal(0, 0.05, 6), 0, 1),
            "nd_angle": rng.uniform(-1.6, -0.8), "dur": rng.uniform(6, 20),
            "nod": rng.normal(0, 0.06) if rng.random() < 0.25 else 0.0, "mouth": rng.normal(0, 1, EMB_DIM)}


def _rest_gloss() -> dict[str, Any]:
    z2 = np.zeros(2)
    return {"anchor": -1, "shape": -1, "loc": REST_XY, "amp": np.zeros((N_PATH, 2)), "freq": np.ones(N_PATH),
            "phase": np.zeros(N_PATH), "drift": z2, "curl0": RELAXED, "curl1": RELAXED, "angle0": np.pi,
            "angle1": np.pi, "two": 0, "nd_loc": z2, "nd_curl": RELAXED, "nd_angle": 0.0, "dur": 3.0,
            "nod": 0.0, "mouth": np.zeros(EMB_DIM)}


def make_bank(names: list[str], seed: int) -> GlossBank:
    """Motion parameters of each named gloss (+ the rest pose as the last row)."""
    rows = [_one_gloss(_name_rng(seed, n)) for n in names] + [_rest_gloss()]
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    # What a frame *shows*: shared location and handshape parts (glosses that share them look alike
    # to an image model) plus a gloss-specific mouthing part, which keypoints without a face lack.
    tables = np.random.default_rng([seed, 7]).normal(0, 1, (len(ANCHORS) + len(HANDSHAPES) + 1, EMB_DIM))
    emb = 0.6 * tables[col["anchor"]] + 0.5 * tables[len(ANCHORS) + col["shape"]] + 0.6 * col["mouth"]
    emb[-1] = tables[-1]  # the rest pose
    return GlossBank(names=list(names), emb=emb, **{k: col[k] for k in GlossBank.__dataclass_fields__
                                                     if k not in ("names", "emb")})

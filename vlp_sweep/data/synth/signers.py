"""Signers: body size, position, rotation, shear, speed, signing space, handedness, camera quality."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlp_sweep.data.synth.knobs import SynthParams


@dataclass
class Signers:
    width: np.ndarray  # [S] shoulder width in pixels
    centre: np.ndarray  # [S, 2] shoulder centre in pixels
    rotation: np.ndarray  # [S] radians
    speed: np.ndarray  # [S] signing speed factor
    amp: np.ndarray  # [S] size of the signing space
    offset: np.ndarray  # [S, 2] where in space they sign (body units)
    hand: np.ndarray  # [S] hand size
    lefty: np.ndarray  # [S] bool
    jitter: np.ndarray  # [S] detector noise factor
    miss_bias: np.ndarray  # [S, 2] camera/lighting: hands of some signers go missing more
    shear: np.ndarray  # [S] camera angle / build: x shifts with height (not undone by normalising)
    aspect: np.ndarray  # [S] vertical stretch (body proportions, camera tilt)
    appearance: np.ndarray  # [S, siglip_dim]


def make_signers(p: SynthParams, rng: np.random.Generator) -> Signers:
    s, v = p.signers, p.signer_variation
    n_seen = s - p.heldout_signers
    lefty = np.zeros(s, dtype=bool)
    if p.left_handed > 0:  # at least one left-hander among seen and among held-out signers
        for lo, hi in ((0, n_seen), (n_seen, s)):
            k = min(hi - lo, max(1, round(p.left_handed * (hi - lo))))
            lefty[lo + rng.choice(hi - lo, k, replace=False)] = True
    centre = np.c_[rng.uniform(420, 580, s), rng.uniform(380, 470, s)]
    return Signers(width=rng.uniform(160, 260, s), centre=centre,
                   rotation=np.radians(rng.uniform(-p.rotation_deg, p.rotation_deg, s)),
                   speed=np.exp(rng.normal(0, 0.2 * v, s)), amp=np.exp(rng.normal(0, 0.15 * v, s)),
                   offset=rng.normal(0, 0.08 * v, (s, 2)), hand=np.exp(rng.normal(0, 0.07 * v, s)),
                   lefty=lefty,
                   jitter=rng.uniform(0.7, 1.3, s), miss_bias=rng.normal(0, 0.3, (s, 2)),
                   shear=rng.normal(0, 0.12 * v, s), aspect=np.exp(rng.normal(0, 0.1 * v, s)),
                   appearance=rng.normal(0, p.siglip_appearance, (s, p.siglip_dim)))

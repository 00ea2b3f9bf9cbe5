"""Motion per frame in body units: wrists, handshapes, hand angles, head nod, body sway."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlp_sweep.data.synth.geometry import RELAXED, REST_XY
from vlp_sweep.data.synth.glosses import GlossBank
from vlp_sweep.data.synth.knobs import SynthParams
from vlp_sweep.data.synth.timeline import Instances


@dataclass
class State:
    dom: np.ndarray  # [F, 2] dominant wrist
    dom_shape: np.ndarray  # [F, 6] curls + spread
    dom_angle: np.ndarray  # [F]
    nd: np.ndarray  # [F, 2] other wrist
    nd_shape: np.ndarray  # [F, 6]
    nd_angle: np.ndarray  # [F]
    nd_rest: np.ndarray  # [F] 1 while the other hand rests
    nod: np.ndarray  # [F]

    def blend(self, other: State, alpha: np.ndarray) -> State:
        def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            w = alpha.reshape((-1,) + (1,) * (a.ndim - 1))
            return a * (1 - w) + b * w

        return State(**{k: mix(getattr(self, k), getattr(other, k)) for k in self.__dataclass_fields__})


def gloss_state(bank: GlossBank, inst: Instances, g: np.ndarray, u: np.ndarray, i: np.ndarray,
                s_amp: np.ndarray, s_off: np.ndarray) -> State:
    """The motion of gloss ``g`` at phase ``u`` in performance ``i`` by a signer with (amp, offset)."""
    rest = (g == bank.rest)[:, None]
    wave = bank.amp[g] * np.sin(2 * np.pi * bank.freq[g] * u[:, None] + bank.phase[g])[..., None]  # [F, P, 2]
    path = wave.sum(1) + bank.drift[g] * (u[:, None] - 0.5)
    scale = (s_amp * inst.amp[i])[:, None]
    base = bank.loc[g] + np.where(rest, 0.0, inst.offset[i] + s_off)
    dom = base + scale * path
    uu = u[:, None]
    shape = np.clip(bank.curl0[g] * (1 - uu) + bank.curl1[g] * uu + inst.curl[i], 0, 1)
    angle = bank.angle0[g] * (1 - u) + bank.angle1[g] * u + inst.angle[i]
    two = bank.two[g]
    mirror = np.array([-1.0, 1.0])
    on_base = bank.nd_loc[g] + inst.offset[i] * 0.5 + s_off
    nd = np.select([two[:, None] == 1, two[:, None] == 2, two[:, None] == 3],
                   [dom * mirror, (base - scale * path) * mirror, on_base], REST_XY * mirror)
    nd_shape = np.select([(two == 1)[:, None] | (two == 2)[:, None], (two == 3)[:, None]],
                         [shape, bank.nd_curl[g]], RELAXED)
    nd_angle = np.select([(two == 1) | (two == 2), two == 3], [-angle, bank.nd_angle[g]], -np.pi)
    nod = bank.nod[g] * np.sin(2 * np.pi * u)
    return State(dom, shape, angle, nd, nd_shape, nd_angle, (two == 0).astype(np.float64), nod)


def sway(clip: np.ndarray, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """A slow, small sway of the upper body per clip, ``[F, 2]`` in body units."""
    n = int(clip[-1]) + 1
    t = np.arange(len(clip)) / p.fps
    freq, phase = rng.uniform(0.1, 0.4, n)[clip, None], rng.uniform(0, 2 * np.pi, (n, 2))[clip]
    amp = rng.normal(0, 0.03 * p.signer_variation, (n, 2))[clip]
    return amp * np.sin(2 * np.pi * freq * t[:, None] + phase)

"""Per-frame "SigLIP" features: what a frame shows (the gloss), who is shown (the signer), and noise."""

from __future__ import annotations

import math

import numpy as np

from vlp_sweep.data.synth.glosses import EMB_DIM, GlossBank
from vlp_sweep.data.synth.knobs import SynthParams
from vlp_sweep.data.synth.signers import Signers
from vlp_sweep.data.synth.timeline import Timeline


def siglip_projection(p: SynthParams, rng: np.random.Generator) -> np.ndarray | None:
    """The fixed random projection from gloss embeddings to features, ``[EMB_DIM, siglip_dim]``."""
    return rng.normal(0, 1 / math.sqrt(EMB_DIM), (EMB_DIM, p.siglip_dim)) if p.siglip_dim else None


def siglip_features(tl: Timeline, bank: GlossBank, s: np.ndarray, sg: Signers, proj: np.ndarray,
                    p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Per-frame features: projected gloss embedding (blended in transitions) + appearance + noise."""
    a = tl.alpha[:, None]
    emb = bank.emb[tl.g_a] * (1 - a) + bank.emb[tl.g_b] * a
    feat = (p.siglip_signal * (emb @ proj) + sg.appearance[s]).astype(np.float32)
    return feat + p.siglip_noise * rng.standard_normal(feat.shape, dtype=np.float32)

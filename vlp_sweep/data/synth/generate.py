"""The entry: render the corpus chunk by chunk, pack it, describe it in meta.json, write it."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import pack_clips, write_packed
from vlp_sweep.data.synth.corpus import Corpus, builtin_corpus, corpus_from_csv
from vlp_sweep.data.synth.detector import detector
from vlp_sweep.data.synth.geometry import FRAME_PX
from vlp_sweep.data.synth.kinematics import render_body, render_hand, to_pixels
from vlp_sweep.data.synth.knobs import SynthParams, make_params
from vlp_sweep.data.synth.motion import gloss_state, sway
from vlp_sweep.data.synth.siglip import siglip_features, siglip_projection
from vlp_sweep.data.synth.signers import Signers, make_signers
from vlp_sweep.data.synth.timeline import build_timeline
from vlp_sweep.errors import UserError

CHUNK_FRAMES = 8192  # frames rendered at once (bounded memory; the missing-hand shares hold per chunk)


def render_chunk(c: Corpus, idx: np.ndarray, sg: Signers, proj: np.ndarray | None, p: SynthParams,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Keypoints ``[F, 50, 2]`` (pixels), confidence ``[F, 50]`` and SigLIP ``[F, D]`` of clips ``idx``."""
    signer = c.signer[idx]
    seqs = [c.seqs[i] for i in idx]
    tl, inst = build_timeline(seqs, c.n_frames[idx], sg.speed[signer], c.bank, p.variation, rng)
    s = signer[tl.clip]
    a = gloss_state(c.bank, inst, tl.g_a, tl.u_a, tl.i_a, sg.amp[s], sg.offset[s])
    b = gloss_state(c.bank, inst, tl.g_b, tl.u_b, tl.i_b, sg.amp[s], sg.offset[s])
    st = a.blend(b, tl.alpha)
    hand = sg.hand[s]
    pts = np.concatenate([render_body(st, sway(tl.clip, p, rng)),
                          render_hand(st.nd, st.nd_shape, st.nd_angle, hand, -1.0),
                          render_hand(st.dom, st.dom_shape, st.dom_angle, hand, 1.0)], axis=1)
    pts, conf = detector(pts, st, tl, s, sg, p, rng)
    cam = rng.normal(0, 12.0, (len(idx), 2))[tl.clip]  # the camera framing differs a little per clip
    kp, conf = to_pixels(pts, conf, s, sg, cam)
    kp[conf == 0] = 0.0  # a missing point has no coordinates, as in MediaPipe output
    sig = None if proj is None else siglip_features(tl, c.bank, s, sg, proj, p, rng).astype(np.float16)
    return kp.astype(np.float16), conf.astype(np.float16), sig


Packed = tuple[pd.DataFrame, np.ndarray, np.ndarray, "np.ndarray | None", dict[str, Any]]


def generate(params: SynthParams | None = None, **overrides: Any) -> Packed:
    """The whole corpus in memory: ``(manifest, keypoints, confidence, siglip or None, meta)``."""
    p = make_params(**{**(asdict(params) if params else {}), **overrides})
    seeds = np.random.SeedSequence(p.seed).spawn(4)
    rng_sent, rng_signers, rng_proj = (np.random.default_rng(s) for s in seeds[:3])
    sg = make_signers(p, rng_signers)
    c = corpus_from_csv(p, rng_sent) if p.corpus else builtin_corpus(p, sg, rng_sent)
    proj = siglip_projection(p, rng_proj)
    chunks = _chunks(c.n_frames)
    clips: list[dict[str, Any]] = []
    for idx, ss in zip(chunks, seeds[3].spawn(len(chunks))):
        kp, conf, sig = render_chunk(c, idx, sg, proj, p, np.random.default_rng(ss))
        clips.extend(_split_clips(c, idx, kp, conf, sig))
    manifest, kp, conf, sig = pack_clips(clips)
    return manifest, kp, conf, sig, _meta(p, c, sg)


def _chunks(n_frames: np.ndarray) -> list[np.ndarray]:
    """Consecutive clips in groups of about CHUNK_FRAMES frames.

    Small chunks keep every temporary array a few MB, so the allocator reuses memory instead of
    mapping fresh pages for each one (which costs more than the arithmetic on some machines).
    """
    group = np.cumsum(n_frames) // CHUNK_FRAMES
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.split(np.arange(len(n_frames)), starts[1:])


def _split_clips(c: Corpus, idx: np.ndarray, kp: np.ndarray, conf: np.ndarray,
                 sig: np.ndarray | None) -> list[dict[str, Any]]:
    bounds = np.r_[0, np.cumsum(c.n_frames[idx])]
    out = []
    for j, i in enumerate(idx):
        a, b = bounds[j], bounds[j + 1]
        out.append({"id": c.ids[i], "split": c.split[i], "text": c.text[i], "keypoints": kp[a:b],
                    "confidence": conf[a:b], "siglip": None if sig is None else sig[a:b],
                    "gloss": " ".join(c.names[g] for g in c.seqs[i]), "signer": f"S{int(c.signer[i]):02d}"})
    return out


def _meta(p: SynthParams, c: Corpus, sg: Signers) -> dict[str, Any]:
    from vlp_sweep import __version__

    params = {**asdict(p), **p.split_sizes()}
    corpus = {"corpus_sha256": hashlib.sha256(Path(p.corpus).read_bytes()).hexdigest()} if p.corpus else {}
    return {"layout": synthetic_layout().to_meta(), "fps": p.fps,
            "frame": {"width": FRAME_PX, "height": FRAME_PX, "units": "pixels"},
            "provenance": {"source": "synthetic", "tool": "vlp-sweep data synth", "version": __version__,
                           "params": params, **corpus, "lexicon_size": len(c.names),
                           "left_handed_signers": [f"S{i:02d}" for i in np.flatnonzero(sg.lefty)],
                           "heldout_signers": [f"S{i:02d}" for i in range(p.signers - p.heldout_signers,
                                                                          p.signers)]}}


def synthesize(out: str | Path, *, overwrite: bool = False, **params: Any) -> Path:
    """Generate a synthetic corpus and write it as a packed dataset (atomically) at ``out``."""
    out = Path(out)
    if out.exists() and not overwrite:  # fail before spending time on generation
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    manifest, kp, conf, sig, meta = generate(**params)
    return write_packed(out, manifest, kp, conf, sig, meta, overwrite=overwrite)

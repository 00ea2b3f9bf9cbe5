"""The synthetic corpus is byte-identical for a seed: pinned hashes recorded before the package split.

The hashes cover the in-memory output of :func:`generate` (manifest rows, keypoint, confidence and
SigLIP bytes, meta.json without the package version and the corpus path), so a pyarrow upgrade
that changes Parquet metadata does not break them but any change to a generated number does.
They were recorded from ``vlp_sweep/data/synth.py`` at commit 04a21a6. If a change to the
generative model is intended, say so in the commit and record the new hashes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from vlp_sweep.data.synth import generate

CORPUS = """name,split,n_frames,gloss,text
a,train,30,HAUS REGEN,the house rain
b,train,45,SONNE WIND HAUS,sun wind house
c,train,20,REGEN,rain
d,dev,33,WIND SONNE,wind sun
e,test,50,HAUS HAUS REGEN,house house rain
"""
# 210 built-in clips are about 13,000 frames: two render chunks, so chunk seeding is covered too.
BUILTIN_SHA256 = "398b6f044e98371e8c39336930be60022f32d4e7802c154181f654c63a25e9bb"
CORPUS_SHA256 = "9fa900bd1ffe77f2a3e03fa392fd2e3eaeaa62cbf53491de7e43d691c7e3bdd4"


def _digest(out: tuple[Any, ...]) -> str:
    manifest, kp, conf, sig, meta = out
    h = hashlib.sha256(manifest.to_csv(index=False).encode())
    for a in (kp, conf, sig):
        if a is not None:
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    meta = json.loads(json.dumps(meta))
    meta["provenance"].pop("version")
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()


def test_builtin_corpus_matches_the_recorded_bytes() -> None:
    out = generate(seed=3, train=150, dev=30, test=30)
    assert out[1].shape[0] > 8192  # more than one render chunk
    assert _digest(out) == BUILTIN_SHA256


def test_corpus_mode_without_siglip_matches_the_recorded_bytes(tmp_path: Path) -> None:
    csv = tmp_path / "corpus.csv"
    csv.write_text(CORPUS)
    out = generate(seed=5, corpus=str(csv), siglip_dim=0, left_handed=0.0)
    out[4]["provenance"]["params"]["corpus"] = "corpus.csv"  # the temporary path is not content
    assert _digest(out) == CORPUS_SHA256

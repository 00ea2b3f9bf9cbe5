"""A tiny, learnable packed dataset made of random arrays (no synthetic generator needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import pack_clips, write_packed

WORDS = ["red", "blue", "green", "cold", "warm", "rain", "snow", "sun", "wind", "cloud", "north", "south"]


def make_tiny(out: Path, n_train: int = 24, n_dev: int = 16, siglip_dim: int = 8, seed: int = 0,
              duplicate_texts: bool = False, texts: list[str] | None = None) -> Path:
    """Each clip: a fixed random pose pattern (+ noise) and a 3-word caption unique to the clip
    (``texts``: the captions of clips 0, 1, ... instead)."""
    rng = np.random.default_rng(seed)
    k = len(synthetic_layout().names)
    clips = []
    for i in range(n_train + n_dev):
        t = int(rng.integers(6, 20))
        base = rng.normal(size=(1, k, 2)) * 0.5
        kp = base + rng.normal(size=(t, k, 2)) * 0.05
        kp[:, 2] = [-0.5, 0.0]  # shoulders fixed: normalisation leaves the pattern intact
        kp[:, 3] = [0.5, 0.0]
        conf = np.ones((t, k))
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3)] + [f"w{i}"]
        text = "same text" if duplicate_texts and i in (0, 1) else " ".join(words)
        if texts is not None and i < len(texts):
            text = texts[i]
        clip = {"id": f"c{i:03d}", "split": "train" if i < n_train else "dev", "text": text,
                "keypoints": kp, "confidence": conf}
        if siglip_dim:
            clip["siglip"] = np.repeat(rng.normal(size=(1, siglip_dim)), t, axis=0)
        clips.append(clip)
    df, kp, conf, sig = pack_clips(clips)
    return write_packed(out, df, kp, conf, sig, {"layout": synthetic_layout().to_meta(), "fps": 25})


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny(tmp_path_factory.mktemp("tiny") / "data")


def tiny_config(data: Path, **over: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "data.path": str(data), "data.max_frames": 16, "model.d_model": 32, "model.heads": 2,
        "model.video_layers": 1, "model.text_layers": 1, "model.embed_dim": 32, "model.dropout": 0.0,
        "optim.batch_size": 8, "optim.epochs": 2, "optim.lr": 2e-3, "run.device": "cpu", "run.seed": 0,
    }
    cfg.update(over)
    return cfg

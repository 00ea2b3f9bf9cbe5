"""A tiny, learnable packed dataset made of random arrays (no synthetic generator needed)."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import pack_clips, write_packed
from vlp_sweep.train.factory import add_import_paths
from vlp_sweep.train.inputs.batching import SplitTensors
from vlp_sweep.train.inputs.tokenizer import sequence_ids

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


def random_split(n: int = 70, max_len: int = 50, points: int = 3, siglip_dim: int = 6, text_len: int = 10,
                 vocab: int = 40, seed: int = 1, device: str = "cpu") -> SplitTensors:
    """A split of random clips of 1 .. ``max_len`` frames (``points`` x (2 coords + visibility) per frame)
    and captions of 1 .. ``text_len`` tokens, straight on ``device`` (no dataset files)."""
    g = torch.Generator().manual_seed(seed)
    length = torch.randint(1, max_len + 1, (n,), generator=g)
    offset = torch.cat([torch.zeros(1, dtype=torch.long), length.cumsum(0)[:-1]])
    frames = int(length.sum())
    tlen = torch.randint(1, text_len + 1, (n,), generator=g)
    tmask = torch.arange(text_len)[None] < tlen[:, None]
    tokens = torch.randint(2, vocab, (n, text_len), generator=g) * tmask
    split = SplitTensors([str(i) for i in range(n)], [""] * n, torch.randn(frames, points, 3, generator=g),
                         torch.randn(frames, siglip_dim, generator=g), offset, length, tokens, tmask,
                         sequence_ids(tokens))
    return SplitTensors(**{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in vars(split).items()})


# A user's factory, written into a folder of its own per test (module names differ per test: no caching).
MODEL = '''
from typing import Literal
import torch
from torch import nn

class Mean(nn.Module):
    def __init__(self, dims, hidden, dropout, own_scale):
        super().__init__()
        self.video = nn.Sequential(nn.Linear(dims.kpt_dim + dims.siglip_dim, hidden), nn.Dropout(dropout),
                                   nn.GELU(), nn.Linear(hidden, dims.embed_dim))
        self.words = nn.Embedding(dims.vocab_size, hidden)
        self.text = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, dims.embed_dim))
        if own_scale:
            self.logit_scale = nn.Parameter(torch.tensor(1.5))

    def forward(self, b):
        x = torch.cat([b[k] for k in ("kpts", "siglip") if k in b], -1)
        m = b["frame_mask"].unsqueeze(-1).to(x.dtype)
        t = b["token_mask"].unsqueeze(-1).float()
        return {"video": self.video((x * m).sum(1) / m.sum(1).clamp(min=1)),
                "text": self.text((self.words(b["tokens"]) * t).sum(1) / t.sum(1).clamp(min=1))}

def build(dims, hidden: int = 16, dropout: float = 0.0, own_scale: bool = False,
          act: Literal["gelu", "relu"] = "gelu"):
    return Mean(dims, hidden, dropout, own_scale)

def needs_width(dims, width: int):
    return Mean(dims, width, 0.0, False)

def flat(dims, **options):
    return Mean(dims, 16, 0.0, False)

def wrong_shape(dims):
    class Bad(Mean):
        def forward(self, b):
            out = super().forward(b)
            return {"video": out["video"][:, :3], "text": out["text"]}
    return Bad(dims, 8, 0.0, False)

def int_embeddings(dims):
    class Bad(Mean):
        def forward(self, b):
            out = super().forward(b)
            return {"video": out["video"].long(), "text": out["text"]}
    return Bad(dims, 8, 0.0, False)

def not_a_module(dims):
    return {"video": None}

not_callable = 3
'''


_COUNT = itertools.count()


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[str]:
    """The name of an importable module holding MODEL (removed from sys.path/modules afterwards)."""
    name = f"user_model_{next(_COUNT)}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODEL))
    add_import_paths([tmp_path])
    yield name
    sys.modules.pop(name, None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def cfg_for(data: Path, factory: str, **options: object) -> dict[str, object]:
    over: dict[str, object] = {"model.factory": factory, **{f"model.options.{k}": v for k, v in options.items()}}
    return {k: v for k, v in tiny_config(data).items() if k not in ("model.d_model", "model.heads",
                                                                   "model.video_layers", "model.text_layers",
                                                                   "model.dropout")} | over

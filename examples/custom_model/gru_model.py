"""A model of another kind than the built-in Transformer towers, swept through ``model.factory``:
a GRU over the pose frames (plus SigLIP when the data has it) and a mean of word embeddings for the
caption. ``build`` is the factory: the input dimensions first, then the options by name; the
annotations let ``vlp-sweep validate`` reject a wrong type before any trial starts.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class GRUPoseModel(nn.Module):
    def __init__(self, dims: Any, hidden: int, layers: int, dropout: float, bidirectional: bool,
                 word_dim: int) -> None:
        super().__init__()
        width = dims.kpt_dim + dims.siglip_dim  # keypoints and SigLIP concatenated per frame
        self.inp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden))
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional,
                          dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.video_head = nn.Linear(hidden * (2 if bidirectional else 1), dims.embed_dim)
        self.words = nn.Embedding(dims.vocab_size, word_dim, padding_idx=0)
        self.text_head = nn.Sequential(nn.Linear(word_dim, word_dim), nn.GELU(), nn.Linear(word_dim, dims.embed_dim))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames = torch.cat([batch[k] for k in ("kpts", "siglip") if k in batch], dim=-1)
        x = self.drop(self.inp(frames))
        mask = batch["frame_mask"]  # [B, T] True = a real frame (holes where frames were masked)
        # The GRU runs up to each clip's last real frame, so padding never reaches the backward direction.
        ends = (mask * torch.arange(1, mask.shape[1] + 1, device=mask.device)).amax(1).clamp(min=1)
        packed = pack_padded_sequence(x, ends.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=mask.shape[1])
        m = mask.unsqueeze(-1).to(h.dtype)
        video = (h * m).sum(1) / m.sum(1).clamp(min=1)  # mean over the real frames
        t = batch["token_mask"].unsqueeze(-1)
        w = self.drop(self.words(batch["tokens"]))
        text = (w * t).sum(1) / t.sum(1).clamp(min=1)  # bag of words: mean of the caption's word vectors
        return {"video": self.video_head(video), "text": self.text_head(text)}


def build(dims: Any, hidden: int = 128, layers: int = 1, dropout: float = 0.1, bidirectional: bool = True,
          word_dim: int = 128) -> nn.Module:
    """The factory: ``model.factory: "gru_model:build"``; options under ``model.options``."""
    return GRUPoseModel(dims, hidden, layers, dropout, bidirectional, word_dim)

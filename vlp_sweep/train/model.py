"""The built-in VLP model: a video tower over pose keypoints (+ optional SigLIP) and a text tower
(tokens through a Transformer, or precomputed text features projected), CLIP-style.

It is the default model factory (``build``), reached through the same contract as a model of your own
(``contract.ContrastiveModel``): ``forward`` returns a dict (video, text) of unnormalised embeddings. Unlike
a model of your own it takes packed batches (``packing.PackedBatch``: no padding computed, no host sync)
and encodes them with ``varlen.encode``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from vlp_sweep.config import ModelConfig
from vlp_sweep.errors import UserError
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.inputs.packing import PackedBatch, Seqs
from vlp_sweep.train.varlen import choose_attention, encode, padded_attend, segment_mean, varlen_attend


def build(dims: ModelDims, *, d_model: int = 128, video_layers: int = 2, text_layers: int = 2, heads: int = 4,
          ff_mult: int = 4, dropout: float = 0.2) -> VLPModel:
    """The built-in model factory (``model.factory`` default); its options are the typed ``model.*`` keys."""
    cfg = ModelConfig(d_model=d_model, video_layers=video_layers, text_layers=text_layers, heads=heads,
                      ff_mult=ff_mult, dropout=dropout, embed_dim=dims.embed_dim)
    return VLPModel(cfg, dims)


def _encoder(cfg: ModelConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_mult * cfg.d_model, dropout=cfg.dropout,
                                       batch_first=True, norm_first=True, activation="gelu")
    # The layers hold the weights (their init, their checkpoint keys); varlen.encode runs them over packed
    # frames, so nn.TransformerEncoder's own (padded) forward is never called.
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class VLPModel(nn.Module):
    """The two towers over packed batches. Speed settings, not part of the model (no effect on the weights or,
    beyond float rounding, on the embeddings): ``set_attention`` (the attention backend), ``recompute``
    (activation checkpointing per layer, for an optimizer step over several micro-batches' worth of clips)
    and ``compile_towers``."""

    packed_input = True  # the trainer hands this model PackedBatch, not the padded dict

    def __init__(self, cfg: ModelConfig, args: ModelDims):
        super().__init__()
        if args.kpt_dim <= 0 and args.siglip_dim <= 0:
            raise UserError("the video tower needs keypoints, SigLIP features or both")
        self.cfg, self.args = cfg, args
        d = cfg.d_model
        self.kpt_proj = nn.Linear(args.kpt_dim, d) if args.kpt_dim > 0 else None
        self.siglip_proj = nn.Sequential(nn.LayerNorm(args.siglip_dim), nn.Linear(args.siglip_dim, d)) \
            if args.siglip_dim > 0 else None
        self.video_pos = nn.Parameter(torch.randn(1, args.max_frames, d) * 0.02)
        self.video_enc = _encoder(cfg, cfg.video_layers)
        self.video_norm = nn.LayerNorm(d)
        self.video_head = nn.Linear(d, cfg.embed_dim)
        if args.text_feature_dim > 0:  # precomputed sentence features: projected, no tokens, no encoder
            f = args.text_feature_dim
            self.text_proj = nn.Sequential(nn.LayerNorm(f), nn.Linear(f, d), nn.GELU(), nn.Dropout(cfg.dropout),
                                           nn.Linear(d, cfg.embed_dim))
        else:
            self.tok = nn.Embedding(args.vocab_size, d, padding_idx=0)
            self.text_pos = nn.Parameter(torch.randn(1, args.max_text_len, d) * 0.02)
            self.text_enc = _encoder(cfg, cfg.text_layers)
            self.text_norm = nn.LayerNorm(d)
            self.text_head = nn.Linear(d, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.attention = "padded"
        self.recompute = False
        self._static = False  # compiled: attention sized by the length bound, one graph for every batch
        self._video_fn: Callable[..., Tensor] = self._video
        self._text_fn: Callable[..., Tensor] = self._text

    def set_attention(self, asked: str, device: torch.device, dtype: torch.dtype) -> str:
        """Pick the attention backend for ``device`` and the autocast ``dtype`` (``varlen.choose_attention``)."""
        self.attention = choose_attention(asked, device, dtype)
        return self.attention

    def compile_towers(self) -> None:
        """``torch.compile`` the two towers, the number of frames and tokens dynamic (it changes every
        batch); the attention call gets the static length bound, so one graph serves every batch."""
        self._video_fn = torch.compile(self._video, dynamic=True)
        self._text_fn = torch.compile(self._text, dynamic=True)
        self._static = True

    def _attend(self, q: Tensor, k: Tensor, v: Tensor, seqs: Seqs) -> Tensor:
        if self.attention == "varlen":
            return varlen_attend(q, k, v, seqs, static=self._static)
        return padded_attend(q, k, v, seqs)

    def _video(self, b: PackedBatch) -> Tensor:
        x: Tensor | int = 0
        if self.kpt_proj is not None:
            assert b.kpts is not None
            x = x + self.kpt_proj(b.kpts)
        if self.siglip_proj is not None:
            assert b.siglip is not None
            x = x + self.siglip_proj(b.siglip)  # fusion by addition in the model width
        assert isinstance(x, Tensor)
        h = self.drop(x + self.video_pos[0, b.video_slots])
        h = encode(self.video_enc, h, b.video, self._attend, self.recompute)
        return self.video_head(self.video_norm(segment_mean(h, b.video)))

    def _text(self, b: PackedBatch) -> Tensor:
        pos = torch.arange(len(b.tokens), device=b.tokens.device) - b.text.cu.long()[:-1][b.text.seg]
        x = self.drop(self.tok(b.tokens) + self.text_pos[0, pos])
        x = encode(self.text_enc, x, b.text, self._attend, self.recompute)
        return self.text_head(self.text_norm(segment_mean(x, b.text)))

    def forward(self, batch: PackedBatch) -> dict[str, Tensor]:
        video = self._video_fn(batch)
        if self.args.text_feature_dim > 0:
            assert batch.text_feats is not None
            return {"video": video, "text": self.text_proj(batch.text_feats)}
        return {"video": video, "text": self._text_fn(batch)}

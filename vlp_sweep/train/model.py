"""The VLP model: a video tower over pose keypoints (+ optional SigLIP) and a text tower, CLIP-style.

``forward`` returns a dict (video, text, logit_scale) that the loss consumes by key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlp_sweep.config import ModelConfig
from vlp_sweep.errors import UserError


@dataclass(frozen=True)
class ModelArgs:
    """Everything needed to rebuild the model from a checkpoint (with ModelConfig)."""

    kpt_dim: int  # points x (coords + visibility); 0 = keypoints not used
    siglip_dim: int  # 0 = SigLIP not used
    vocab_size: int
    max_frames: int
    max_text_len: int
    logit_scale_init: float
    learn_temperature: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _encoder(cfg: ModelConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_mult * cfg.d_model, dropout=cfg.dropout,
                                       batch_first=True, norm_first=True, activation="gelu")
    # No nested tensors: they fall back to slow paths under autocast and change results with padding.
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid positions: ``x [B, T, D]``, ``mask [B, T]`` (True = valid) -> ``[B, D]``."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


class VLPModel(nn.Module):
    def __init__(self, cfg: ModelConfig, args: ModelArgs):
        super().__init__()
        if args.kpt_dim <= 0 and args.siglip_dim <= 0:
            raise UserError("the video tower needs keypoints, SigLIP features or both")
        if cfg.d_model % cfg.heads:
            raise UserError(f"model.d_model ({cfg.d_model}) must be divisible by model.heads ({cfg.heads})")
        self.cfg, self.args = cfg, args
        d = cfg.d_model
        self.kpt_proj = nn.Linear(args.kpt_dim, d) if args.kpt_dim > 0 else None
        self.siglip_proj = nn.Sequential(nn.LayerNorm(args.siglip_dim), nn.Linear(args.siglip_dim, d)) \
            if args.siglip_dim > 0 else None
        self.video_pos = nn.Parameter(torch.randn(1, args.max_frames, d) * 0.02)
        self.video_enc = _encoder(cfg, cfg.video_layers)
        self.video_norm = nn.LayerNorm(d)
        self.video_head = nn.Linear(d, cfg.embed_dim)
        self.tok = nn.Embedding(args.vocab_size, d, padding_idx=0)
        self.text_pos = nn.Parameter(torch.randn(1, args.max_text_len, d) * 0.02)
        self.text_enc = _encoder(cfg, cfg.text_layers)
        self.text_norm = nn.LayerNorm(d)
        self.text_head = nn.Linear(d, cfg.embed_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.logit_scale = nn.Parameter(torch.tensor(float(args.logit_scale_init)),
                                        requires_grad=args.learn_temperature)

    def encode_video(self, kpts: torch.Tensor | None, siglip: torch.Tensor | None,
                     mask: torch.Tensor) -> torch.Tensor:
        """``kpts [B, T, kpt_dim]``, ``siglip [B, T, D]``, ``mask [B, T]`` -> unit vectors ``[B, E]`` (float32)."""
        x = 0
        if self.kpt_proj is not None:
            assert kpts is not None
            x = x + self.kpt_proj(kpts)
        if self.siglip_proj is not None:
            assert siglip is not None
            x = x + self.siglip_proj(siglip)  # fusion by addition in the model width
        assert isinstance(x, torch.Tensor)
        x = self.drop(x + self.video_pos[:, : x.shape[1]])
        x = self.video_enc(x, src_key_padding_mask=~mask)
        return F.normalize(self.video_head(self.video_norm(masked_mean(x, mask))).float(), dim=-1)

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``tokens [B, L]`` int64, ``mask [B, L]`` -> unit vectors ``[B, E]`` (float32)."""
        x = self.drop(self.tok(tokens) + self.text_pos[:, : tokens.shape[1]])
        x = self.text_enc(x, src_key_padding_mask=~mask)
        return F.normalize(self.text_head(self.text_norm(masked_mean(x, mask))).float(), dim=-1)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {
            "video": self.encode_video(batch.get("kpts"), batch.get("siglip"), batch["frame_mask"]),
            "text": self.encode_text(batch["tokens"], batch["token_mask"]),
            "logit_scale": self.logit_scale,
        }

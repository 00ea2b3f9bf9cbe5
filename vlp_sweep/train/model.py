"""The built-in VLP model: a video tower over pose keypoints (+ optional SigLIP) and a text tower
(tokens through a Transformer, or precomputed text features projected), CLIP-style.

It is the default model factory (``build``), reached through the same contract as a model of your own
(``contract.ContrastiveModel``): ``forward`` returns a dict (video, text) of unnormalised embeddings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from vlp_sweep.config import ModelConfig
from vlp_sweep.errors import UserError
from vlp_sweep.train.factory import ModelDims


def build(dims: ModelDims, *, d_model: int = 128, video_layers: int = 2, text_layers: int = 2, heads: int = 4,
          ff_mult: int = 4, dropout: float = 0.2, length_buckets: int = 0) -> VLPModel:
    """The built-in model factory (``model.factory`` default); its options are the typed ``model.*`` keys."""
    cfg = ModelConfig(d_model=d_model, video_layers=video_layers, text_layers=text_layers, heads=heads,
                      ff_mult=ff_mult, dropout=dropout, embed_dim=dims.embed_dim)
    return VLPModel(cfg, dims, length_buckets)


def _encoder(cfg: ModelConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff_mult * cfg.d_model, dropout=cfg.dropout,
                                       batch_first=True, norm_first=True, activation="gelu")
    # No nested tensors: they fall back to slow paths under autocast and change results with padding.
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid positions: ``x [B, T, D]``, ``mask [B, T]`` (True = valid) -> ``[B, D]``."""
    m = mask.to(x.dtype).unsqueeze(-1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


MIN_GROUP_ROWS = 16


Group = tuple[torch.Tensor, int, bool]  # (row indices, width, any masked slot left)
Plan = list[list[Group] | None]  # per input (video, text): its groups, None = that input not grouped


def plan_groups(masks: list[torch.Tensor], groups: int, multiple: int = 8,
                min_rows: int = MIN_GROUP_ROWS) -> list[list[Group]]:
    """Split the rows of each ``mask [B, T]`` (True = valid) into up to ``groups`` groups of similar
    length, each of at least ``min_rows`` rows (small matrix products waste more than the padding costs).

    Per mask, per group: the group's row indices, the width its padding can be cut to (the last valid
    slot, rounded up to ``multiple`` for tensor cores, at most T) and whether any of its rows still has a
    masked slot. Groups have equal sizes; rows come sorted by length. One host sync for all the masks.
    """
    orders, stats = [], []
    for mask in masks:
        end = (mask * torch.arange(1, mask.shape[1] + 1, device=mask.device)).amax(1)  # 1 + last valid slot
        order = torch.argsort(end, stable=True)
        orders.append(order)
        stats += [end[order], mask.sum(1)[order]]
    host = torch.cat(stats).cpu().numpy()  # the one sync
    out, at = [], 0
    for mask, order in zip(masks, orders):
        b, t = mask.shape
        ends, counts = host[at:at + b], host[at + b:at + 2 * b]
        at += 2 * b
        bounds = np.linspace(0, b, max(1, min(groups, b // min_rows)) + 1).round().astype(int)
        plan = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            width = min(t, -(-max(int(ends[lo:hi].max()), 1) // multiple) * multiple)
            plan.append((order[lo:hi], width, bool((counts[lo:hi] < width).any())))
        out.append(plan)
    return out


def length_groups(mask: torch.Tensor, groups: int, multiple: int = 8,
                  min_rows: int = MIN_GROUP_ROWS) -> list[Group]:
    """:func:`plan_groups` of one mask."""
    return plan_groups([mask], groups, multiple, min_rows)[0]


class VLPModel(nn.Module):
    """``length_buckets`` is a speed setting, not part of the model: how many groups of similar length
    each batch is encoded in, with their padding cut (0 = every clip at full width). The embeddings do
    not depend on it beyond float rounding (in training, dropout masks differ with the shapes)."""

    def __init__(self, cfg: ModelConfig, args: ModelDims, length_buckets: int = 0):
        super().__init__()
        self.length_buckets = length_buckets
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
        self._video_fn: Callable[..., torch.Tensor] = self._video
        self._text_fn: Callable[..., torch.Tensor] = self._text
        self._compiled = False

    def compile_towers(self) -> None:
        """``torch.compile`` the two towers, shapes dynamic: the length groups change width every batch,
        and the grouping itself (one host sync) stays outside the compiled graphs."""
        self._video_fn = torch.compile(self._video, dynamic=True)
        self._text_fn = torch.compile(self._text, dynamic=True)
        self._compiled = True

    def group_plan(self, batch: dict[str, Any]) -> Plan | None:
        """The length groups of a batch's video and text (one host sync); None when grouping is off.
        GradCache computes it once per micro-batch and hands it to both of its passes."""
        if self.length_buckets <= 0:
            return None
        if self.args.text_feature_dim > 0:  # no token sequence to cut: the text side is one vector per clip
            return [plan_groups([batch["frame_mask"]], self.length_buckets)[0], None]
        video, text = plan_groups([batch["frame_mask"], batch["token_mask"]], self.length_buckets)
        return [video, text]

    def _grouped(self, encode: Callable[..., torch.Tensor], inputs: list[torch.Tensor | None],
                 mask: torch.Tensor, groups: list[Group] | None) -> torch.Tensor:
        """``encode(*inputs, mask)`` per length group with the padding cut, rows put back in order.
        ``encode`` gets ``mask=None`` for a group with no masked slot (attention without a mask is faster),
        except when compiled: one graph with a mask rather than a second one without."""
        if groups is None:
            return encode(*inputs, mask)
        parts, rows = [], []
        for idx, width, masked in groups:
            cut = [None if x is None else x[idx, :width] for x in inputs]
            parts.append(encode(*cut, mask[idx, :width] if masked or self._compiled else None))
            rows.append(idx)
        order = torch.cat(rows)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=order.device)
        return torch.cat(parts)[inverse]

    def _video(self, kpts: torch.Tensor | None, siglip: torch.Tensor | None,
               mask: torch.Tensor | None) -> torch.Tensor:
        x = 0
        if self.kpt_proj is not None:
            assert kpts is not None
            x = x + self.kpt_proj(kpts)
        if self.siglip_proj is not None:
            assert siglip is not None
            x = x + self.siglip_proj(siglip)  # fusion by addition in the model width
        assert isinstance(x, torch.Tensor)
        x = self.drop(x + self.video_pos[:, : x.shape[1]])
        return self._pool(self.video_enc, self.video_norm, self.video_head, x, mask)

    def _text(self, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.drop(self.tok(tokens) + self.text_pos[:, : tokens.shape[1]])
        return self._pool(self.text_enc, self.text_norm, self.text_head, x, mask)

    @staticmethod
    def _pool(enc: nn.TransformerEncoder, norm: nn.LayerNorm, head: nn.Linear, x: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
        """Encoder, mean over the valid slots (all when ``mask`` is None), projection (the trainer
        normalises)."""
        if mask is None:
            pooled = enc(x).mean(1)
        else:
            pooled = masked_mean(enc(x, src_key_padding_mask=~mask), mask)
        return head(norm(pooled))

    def forward(self, batch: dict[str, Any], plan: Plan | None = None) -> dict[str, torch.Tensor]:
        """``plan``: the batch's :meth:`group_plan` when already computed (else computed here)."""
        plan = plan if plan is not None else self.group_plan(batch)
        video_groups, text_groups = plan if plan is not None else (None, None)
        video = self._grouped(self._video_fn, [batch.get("kpts"), batch.get("siglip")], batch["frame_mask"],
                              video_groups)
        if self.args.text_feature_dim > 0:
            return {"video": video, "text": self.text_proj(batch["text_feats"])}
        text = self._grouped(self._text_fn, [batch["tokens"]], batch["token_mask"], text_groups)
        return {"video": video, "text": text}

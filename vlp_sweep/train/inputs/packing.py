"""Batches built from host plans (``batch_plan.py``): packed for the built-in model, padded for yours.

A :class:`PackedBatch` holds a batch's frames (and tokens) end to end with no padding: sequence ``i``
owns entries ``cu[i]:cu[i + 1]``. Every size is known on the host before the batch is built, so nothing
here, in the model or in the loss reads a value back from the device. The index arrays travel to the
device in one copy from pinned memory (non-blocking on a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from vlp_sweep.config import AugConfig, DataConfig
from vlp_sweep.train.inputs.augment import augment_keypoints
from vlp_sweep.train.inputs.batch_plan import FramePlan, plan_frames
from vlp_sweep.train.inputs.batching import SplitTensors


@dataclass
class Seqs:
    """Packed sequences on the device; their layout also on the host."""

    cu: Tensor  # [B + 1] int32: sequence i is entries cu[i]:cu[i + 1]
    seg: Tensor  # [N] int64: the sequence of each entry
    lengths: Tensor  # [B] int64
    cu_host: np.ndarray  # [B + 1] the same offsets
    bound: int  # an upper bound on every length (max_frames / max_text_len): a static size for compiled graphs
    max_len: int = 0  # the longest sequence (from cu_host; a plain int, so compiled code never reads numpy)
    _pad_index: Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.max_len = int(np.diff(self.cu_host).max(initial=1))

    def __len__(self) -> int:
        return len(self.cu_host) - 1

    def pad_index(self) -> Tensor:
        """``[N]`` int64: each entry's place in a ``[B * max_len]`` padded layout (for attention kernels
        that need padding; computed once per batch on the device, no sync)."""
        if self._pad_index is None:
            first = self.cu.long()[:-1][self.seg]  # [N] offset of each entry's sequence
            within = torch.arange(len(self.seg), device=self.seg.device) - first
            self._pad_index = self.seg * self.max_len + within
        return self._pad_index

    def select(self, start: int, stop: int) -> Seqs:
        """Sequences ``start:stop`` (their entries are ``cu_host[start]:cu_host[stop]``)."""
        lo, hi = int(self.cu_host[start]), int(self.cu_host[stop])
        return Seqs(self.cu[start:stop + 1] - self.cu[start], self.seg[lo:hi] - start, self.lengths[start:stop],
                    self.cu_host[start:stop + 1] - lo, self.bound)


@dataclass
class PackedBatch:
    """The built-in model's input: ``B`` clips, their frames and caption tokens packed."""

    video: Seqs
    video_slots: Tensor  # [Nv] each frame's position (0 .. max_frames - 1)
    kpts: Tensor | None  # [Nv, P] normalised keypoints + visibility, flattened per frame
    siglip: Tensor | None  # [Nv, D]
    text: Seqs
    tokens: Tensor  # [Nt] token ids, no padding
    text_ids: Tensor  # [B] equal for identical token sequences
    text_feats: Tensor | None = None  # [B, D] precomputed text features (data.use_text_features)

    def __len__(self) -> int:
        return len(self.video)

    def select(self, start: int, stop: int) -> PackedBatch:
        """Clips ``start:stop`` (views where the entries are contiguous: no copy, no sync)."""
        v_lo, v_hi = int(self.video.cu_host[start]), int(self.video.cu_host[stop])
        t_lo, t_hi = int(self.text.cu_host[start]), int(self.text.cu_host[stop])
        return PackedBatch(self.video.select(start, stop), self.video_slots[v_lo:v_hi],
                           None if self.kpts is None else self.kpts[v_lo:v_hi],
                           None if self.siglip is None else self.siglip[v_lo:v_hi],
                           self.text.select(start, stop), self.tokens[t_lo:t_hi], self.text_ids[start:stop],
                           None if self.text_feats is None else self.text_feats[start:stop])

    def float(self) -> PackedBatch:
        """Half-precision inputs as float32 (a float32 model without autocast)."""
        def f(x: Tensor | None) -> Tensor | None:
            return x.float() if x is not None and x.dtype == torch.float16 else x
        return replace(self, kpts=f(self.kpts), siglip=f(self.siglip), text_feats=f(self.text_feats))


Batch = PackedBatch | dict[str, Tensor]


def batch_len(batch: Batch) -> int:
    """Clips in a batch of either form."""
    return len(batch) if isinstance(batch, PackedBatch) else len(batch["tokens"])


def batch_text_ids(batch: Batch) -> Tensor:
    return batch.text_ids if isinstance(batch, PackedBatch) else batch["text_ids"]


def select_clips(batch: Batch, start: int, stop: int) -> Batch:
    """Clips ``start:stop`` of a batch of either form."""
    if isinstance(batch, PackedBatch):
        return batch.select(start, stop)
    return {k: v[start:stop] for k, v in batch.items()}


def _to_device(parts: list[np.ndarray], device: torch.device) -> list[Tensor]:
    """Int64 host arrays -> device tensors in one (pinned, non-blocking on a GPU) copy."""
    sizes = [len(p) for p in parts]
    flat = torch.from_numpy(np.concatenate(parts).astype(np.int64, copy=False))
    if device.type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    return list(torch.split(flat, sizes))


def _seqs(cu_host: np.ndarray, seg: Tensor, cu: Tensor, lengths: Tensor, bound: int) -> Seqs:
    return Seqs(cu.to(torch.int32), seg, lengths, cu_host, bound)


def build_packed(split: SplitTensors, plan: FramePlan, cfg: DataConfig, aug: AugConfig | None,
                 gen: torch.Generator | None, max_text_len: int) -> PackedBatch:
    """Gather ``plan``'s frames and its clips' tokens into a packed batch; ``aug`` (training) applies
    option E's keypoint augmentation with draws from ``gen``."""
    b = len(plan)
    v_len = plan.lengths
    v_seg = np.repeat(np.arange(b), v_len)
    rows = split.offset_host[plan.clips][v_seg] + plan.rows
    t_len = split.token_len_host[plan.clips]
    t_seg = np.repeat(np.arange(b), t_len)
    t_cu = np.concatenate([[0], np.cumsum(t_len)]).astype(np.int64)
    t_pos = np.arange(len(t_seg)) - t_cu[:-1][t_seg]
    t_flat = plan.clips[t_seg] * split.tokens.shape[1] + t_pos
    (rows_d, slots_d, vseg_d, vcu_d, vlen_d, tflat_d, tseg_d, tcu_d, tlen_d, clips_d) = _to_device(
        [rows, plan.slots, v_seg, plan.cu, v_len, t_flat, t_seg, t_cu, t_len, plan.clips], split.tokens.device)
    kpts = siglip = None
    if split.kpts is not None:
        k = split.kpts[rows_d]  # [Nv, K, C+1]
        if aug is not None:
            k = augment_keypoints(k, vseg_d, b, aug, gen)
        kpts = k.flatten(1)
    if split.siglip is not None:
        siglip = split.siglip[rows_d]
    video = _seqs(plan.cu, vseg_d, vcu_d, vlen_d, plan.max_frames)
    text = _seqs(t_cu, tseg_d, tcu_d, tlen_d, max_text_len)
    feats = None if split.text_feats is None else split.text_feats[clips_d]
    return PackedBatch(video, slots_d, kpts, siglip, text, split.tokens.view(-1)[tflat_d], split.text_ids[clips_d],
                       feats)


def padded_batch(split: SplitTensors, plan: FramePlan, aug: AugConfig | None,
                 gen: torch.Generator | None) -> dict[str, Tensor]:
    """The padded batch a model of your own receives (README, "Your own model"): the same frames as
    :func:`build_packed`, each clip at ``max_frames`` slots with ``frame_mask`` marking the real ones."""
    b, t = len(plan), plan.max_frames
    rows, valid = plan.padded()
    rows = rows + split.offset_host[plan.clips][:, None]
    rows_d, valid_d, clips_d = _to_device([rows.ravel(), valid.ravel(), plan.clips], split.tokens.device)
    rows_d, valid_d = rows_d.view(b, t), valid_d.view(b, t).bool()
    batch = {"tokens": split.tokens[clips_d], "token_mask": split.token_mask[clips_d],
             "text_ids": split.text_ids[clips_d]}
    if split.text_feats is not None:
        batch["text_feats"] = split.text_feats[clips_d]
    if split.kpts is not None:
        k = split.kpts[rows_d.view(-1)]  # [B*T, K, C+1]
        if aug is not None:
            k = augment_keypoints(k, torch.arange(b, device=k.device).repeat_interleave(t), b, aug, gen)
        k = k * valid_d.view(-1)[:, None, None].to(k.dtype)
        batch["kpts"] = k.view(b, t, -1)
    if split.siglip is not None:
        batch["siglip"] = split.siglip[rows_d] * valid_d[..., None].to(split.siglip.dtype)
    batch["frame_mask"] = valid_d
    return batch


def make_batch(split: SplitTensors, idx: Tensor | np.ndarray, cfg: DataConfig) -> dict[str, Tensor]:
    """The padded evaluation batch of clips ``idx`` (centre windows, no augmentation): what a check of a
    model of your own feeds it."""
    clips = idx.cpu().numpy() if isinstance(idx, Tensor) else np.asarray(idx)
    plan = plan_frames(clips.astype(np.int64), split.length_host, cfg.max_frames, cfg.frame_sampling)
    return padded_batch(split, plan, None, None)

"""Device-resident clips and batch building: every split lives on the device once, and a batch is
a gather of frame indices (option A crop/uniform, option E speed), never a per-sample Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from vlp_sweep.config import AugConfig, DataConfig, TrainConfig
from vlp_sweep.data.layout import Layout
from vlp_sweep.data.normalize import normalize_keypoints
from vlp_sweep.data.packed import PackedDataset
from vlp_sweep.errors import UserError
from vlp_sweep.train.augment import augment_keypoints
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.tokenizer import WordTokenizer, sequence_ids


@dataclass
class SplitTensors:
    """One split on the device. Frame rows of ``kpts``/``siglip`` belong to clip i at
    ``offset[i] : offset[i] + length[i]``."""

    ids: list[str]
    texts: list[str]
    kpts: torch.Tensor | None  # [F, K, C+1] normalised coordinates + visibility (storage dtype)
    siglip: torch.Tensor | None  # [F, D]
    offset: torch.Tensor  # [N] int64
    length: torch.Tensor  # [N] int64
    tokens: torch.Tensor  # [N, L] int64
    token_mask: torch.Tensor  # [N, L] bool
    text_ids: torch.Tensor  # [N] int64: equal for identical token sequences (false negatives, retrieval ties)
    text_feats: torch.Tensor | None = None  # [N, D] precomputed text features (data.use_text_features)

    def __len__(self) -> int:
        return len(self.ids)


def storage_dtype(device: torch.device) -> torch.dtype:
    """Dtype of the data kept resident on ``device``: half on a GPU (memory), float32 on the CPU (speed)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def input_dims(ds: PackedDataset, cfg: DataConfig) -> tuple[int, int]:
    """(keypoint input width per frame, SigLIP width) the model sees; 0 for an input not used."""
    kpt = ds.n_points * (ds.dims + 1) if cfg.use_kpts else 0  # coords + visibility per point
    return kpt, ds.siglip_dim if cfg.use_siglip else 0


def model_dims(ds: PackedDataset, cfg: TrainConfig, vocab_size: int) -> ModelDims:
    """What the model factory receives for this dataset and config."""
    kpt, siglip = input_dims(ds, cfg.data)
    text = ds.text_feature_dim if cfg.data.use_text_features else 0
    return ModelDims(kpt_dim=kpt, siglip_dim=siglip, text_feature_dim=text, vocab_size=vocab_size,
                     max_frames=cfg.data.max_frames, max_text_len=cfg.data.max_text_len, embed_dim=cfg.model.embed_dim)


def _frame_rows(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source frame indices of the split's clips, their clip number, and the new offsets."""
    n = rows["n_frames"].to_numpy(np.int64)
    new_off = np.concatenate([[0], np.cumsum(n)[:-1]])
    src = np.concatenate([np.arange(o, o + k) for o, k in zip(rows["offset"].to_numpy(np.int64), n)])
    clip = np.repeat(np.arange(len(rows)), n)
    return src, clip, new_off


def load_split(ds: PackedDataset, split: str, cfg: DataConfig, tok: WordTokenizer, device: torch.device,
               dtype: torch.dtype, limit: int = 0) -> SplitTensors:
    """Copy one split to ``device`` once: keypoints normalised there (chunked), SigLIP as is."""
    rows = ds.split(split)
    if limit:
        rows = rows.iloc[:limit].reset_index(drop=True)
    src, clip, new_off = _frame_rows(rows)
    kpts = siglip = None
    if cfg.use_kpts:
        kpts = _normalised(ds, src, clip, len(rows), device, dtype)
    if cfg.use_siglip:
        if ds.siglip is None:
            raise UserError(f"{ds.root}: data.use_siglip is true but the dataset has no siglip.npy")
        siglip = torch.from_numpy(np.asarray(ds.siglip[src])).to(device=device, dtype=dtype)
    texts = rows["text"].astype(str).tolist()
    tokens, tmask = tok.encode(texts, cfg.max_text_len)
    text_ids = sequence_ids(tokens)  # duplicates as the text tower sees them, not as raw strings
    length = torch.tensor(rows["n_frames"].to_numpy(np.int64), device=device)
    feats = _text_features(ds, rows, device, dtype) if cfg.use_text_features else None
    return SplitTensors(rows["id"].astype(str).tolist(), texts, kpts, siglip, torch.from_numpy(new_off).to(device),
                        length, tokens.to(device), tmask.to(device), text_ids.to(device), feats)


def _text_features(ds: PackedDataset, rows: pd.DataFrame, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The split's rows of text_features.npy (one row per manifest row, in manifest order)."""
    if ds.text_features is None:
        raise UserError(f"{ds.root}: data.use_text_features is true but the dataset has no text_features.npy "
                        "(vlp-sweep data import --text-features DIR)")
    at = pd.Index(ds.manifest["id"].astype(str)).get_indexer(pd.Index(rows["id"].astype(str)))
    return torch.from_numpy(np.asarray(ds.text_features[at])).to(device=device, dtype=dtype)


def _normalised(ds: PackedDataset, src: np.ndarray, clip: np.ndarray, n_clips: int, device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
    layout = Layout.from_meta(ds.meta["layout"]) if "layout" in ds.meta else None
    shoulders = layout.shoulders if layout else None
    kp = torch.from_numpy(np.asarray(ds.keypoints[src])).to(device)
    conf = torch.from_numpy(np.asarray(ds.confidence[src])).to(device)
    seg = torch.from_numpy(clip).to(device)
    return normalize_keypoints(kp, conf, seg, n_clips, shoulders).to(dtype)


def frame_positions(length: torch.Tensor, max_frames: int, sampling: str, train: bool, speed: float,
                    gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Which source frame feeds each of the ``max_frames`` slots: ``pos [B, T]`` (within the clip) and
    ``valid [B, T]``. crop: a random window in training, the centre one in evaluation; uniform: evenly
    spaced frames over the whole clip. With ``speed`` > 0 (training only) the window is resampled at a
    random rate in [1 - speed, 1 + speed] (temporal jitter)."""
    dev, b = length.device, len(length)
    slots = torch.arange(max_frames, device=dev, dtype=torch.float32)
    rate = torch.ones(b, device=dev)
    if train and speed > 0:
        rate = 1 + (torch.rand(b, device=dev, generator=gen) * 2 - 1) * speed
    whole = (length > max_frames) & (sampling == "uniform")  # uniform: span the whole clip, T slots
    span = torch.where(whole, length.float(), (max_frames * rate).clamp(max=length.float()))
    n_out = torch.where(whole, max_frames, (span / rate).floor().long().clamp(1, max_frames))
    room = length.float() - span  # >= 0: how far the window can slide
    if train and sampling == "crop":
        start = (torch.rand(b, device=dev, generator=gen) * (room + 1)).floor().clamp(max=room)
    else:
        start = (room / 2).floor()
    step = span / n_out.float()
    pos = (start[:, None] + slots[None] * step[:, None]).floor().long()
    pos = torch.minimum(pos, (length - 1)[:, None])
    valid = slots[None] < n_out[:, None].float()
    return pos, valid


def make_batch(split: SplitTensors, idx: torch.Tensor, cfg: DataConfig, aug: AugConfig | None,
               gen: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Gather clips ``idx`` into model inputs; ``aug`` (training only) applies option E."""
    train = aug is not None
    pos, valid = frame_positions(split.length[idx], cfg.max_frames, cfg.frame_sampling, train,
                                 aug.speed if aug else 0.0, gen)
    rows = split.offset[idx][:, None] + pos  # [B, T] frame rows
    batch: dict[str, torch.Tensor] = {"tokens": split.tokens[idx], "token_mask": split.token_mask[idx],
                                      "text_ids": split.text_ids[idx]}
    if split.text_feats is not None:
        batch["text_feats"] = split.text_feats[idx]
    if train and aug is not None and aug.frame_mask_prob > 0:
        drop = torch.rand(valid.shape, device=valid.device, generator=gen) < aug.frame_mask_prob
        drop[:, 0] = False  # keep at least one frame per clip
        valid = valid & ~drop
    if split.kpts is not None:
        k = split.kpts[rows]  # [B, T, K, C+1]
        if train and aug is not None:
            k = augment_keypoints(k, aug, gen)
        k = k * valid[..., None, None].to(k.dtype)
        batch["kpts"] = k.flatten(2)
    if split.siglip is not None:
        batch["siglip"] = split.siglip[rows] * valid[..., None].to(split.siglip.dtype)
    batch["frame_mask"] = valid
    return batch

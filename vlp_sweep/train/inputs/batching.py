"""Device-resident clips and batch building: every split lives on the device once, and a batch is a
gather of the frame rows a host-side plan lists (``batch_plan.py``), never a per-sample Python loop.

Two batch forms come from one plan:

- :class:`PackedBatch` (the built-in model): the batch's frames and tokens packed end to end, no
  padding, each sequence's extent in ``cu`` offsets (what variable-length attention takes). Its sizes are
  known on the host, so building and encoding it needs no device-to-host sync.
- the padded dict of :func:`padded_batch` (a model of your own: README, "Your own model"): ``kpts
  [B, T, P]``, ``siglip [B, T, D]``, ``frame_mask [B, T]``, ``tokens``/``token_mask [B, L]``,
  ``text_ids [B]`` (and ``text_feats [B, D]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from vlp_sweep.config import DataConfig, TrainConfig
from vlp_sweep.data.layout import Layout
from vlp_sweep.data.normalize import normalize_keypoints
from vlp_sweep.data.packed import PackedDataset
from vlp_sweep.errors import UserError
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.inputs.tokenizer import WordTokenizer, sequence_ids


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
    # The same sizes on the host, where batches are planned (no device read per batch):
    length_host: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [N] frames per clip
    offset_host: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [N] first frame row
    token_len_host: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [N] tokens per caption

    def __post_init__(self) -> None:
        if len(self.length_host) != len(self.ids):  # built from device tensors alone: read them once
            self.length_host = self.length.cpu().numpy().astype(np.int64)
            self.offset_host = self.offset.cpu().numpy().astype(np.int64)
            self.token_len_host = self.token_mask.sum(1).cpu().numpy().astype(np.int64)

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
    n_frames = rows["n_frames"].to_numpy(np.int64).copy()
    feats = _text_features(ds, rows, device, dtype) if cfg.use_text_features else None
    return SplitTensors(rows["id"].astype(str).tolist(), texts, kpts, siglip, torch.from_numpy(new_off).to(device),
                        torch.from_numpy(n_frames).to(device), tokens.to(device), tmask.to(device),
                        text_ids.to(device), feats, n_frames, new_off.astype(np.int64),
                        tmask.sum(1).numpy().astype(np.int64))


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



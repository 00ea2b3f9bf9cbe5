"""Loaded data kept for the next trial of the same process.

A Ray Tune worker is reused for trial after trial (``reuse_actors``), and every trial of a sweep reads the
same dataset. Opening it (the finiteness scan of every array) and building the device-resident splits
(keypoint normalisation, tokenisation) cost about 3 s per trial on a Phoenix-2014T-sized corpus
(8,257 clips) on one CPU core, 0.07 s with this cache (``benchmarks/bench_data_cache.py``).

What is cached is exactly what a fresh load would give: the key holds the dataset folder, the size and
modification time of each of its files (a dataset rewritten in place is read again), and every input of
``load_split`` (split, clip limit, the data config fields it reads, the vocabulary, device and dtype).
The cached tensors are only ever read: batches are gathers (copies), so no trial can change what the next
one sees. One dataset is kept at a time; a new one replaces it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from vlp_sweep.config import DataConfig
from vlp_sweep.data.packed import PackedDataset, load_packed
from vlp_sweep.train.inputs.batching import SplitTensors, load_split
from vlp_sweep.train.inputs.tokenizer import WordTokenizer

# Per dataset: train and eval for two input combinations (fusion on and off), what a sweep alternates. Each entry
# lives on the trial's device, and a GPU may be shared by several trials: keep no more than that.
MAX_SPLITS = 4

_dataset_key: tuple[Any, ...] | None = None
_dataset: PackedDataset | None = None
_splits: dict[tuple[Any, ...], SplitTensors] = {}


def _files_signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_file():
            st = entry.stat()
            out.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def packed(path: str | os.PathLike[str]) -> PackedDataset:
    """``load_packed(path)``, or the dataset a previous call of this process opened when its files are unchanged."""
    global _dataset_key, _dataset
    root = Path(path).resolve()
    if not root.is_dir():
        return load_packed(path)  # the same one-line error as always
    key = (str(root), _files_signature(root))
    if key != _dataset_key:
        clear()
        _dataset = load_packed(root)
        _dataset_key = key
    assert _dataset is not None
    return _dataset


def split(ds: PackedDataset, name: str, cfg: DataConfig, tok: WordTokenizer, device: torch.device,
          dtype: torch.dtype, limit: int = 0) -> SplitTensors:
    """``load_split(...)``, kept for the next trial when ``ds`` came from :func:`packed`."""
    if ds is not _dataset:
        return load_split(ds, name, cfg, tok, device, dtype, limit)
    vocab = hashlib.sha256("\n".join(tok.vocab).encode()).hexdigest()
    key = (name, limit, cfg.use_kpts, cfg.use_siglip, cfg.use_text_features, cfg.max_text_len, vocab,
           str(device), dtype)
    hit = _splits.pop(key, None)
    if hit is None:
        hit = load_split(ds, name, cfg, tok, device, dtype, limit)
        while len(_splits) >= MAX_SPLITS:
            _splits.pop(next(iter(_splits)))  # the least recently used
    _splits[key] = hit  # (re)inserted last: most recently used
    return hit


def held() -> list[SplitTensors]:
    """The splits kept now, least recently used first."""
    return list(_splits.values())


def clear() -> None:
    """Forget the cached dataset and its splits (their memory goes back once no trial holds them)."""
    global _dataset_key, _dataset
    _dataset_key, _dataset = None, None
    _splits.clear()

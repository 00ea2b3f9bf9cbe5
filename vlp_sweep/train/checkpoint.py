"""Checkpoints as plain dicts of tensors and primitives, written atomically, loaded with weights_only=True.

full:    kind, config, model_args, model_source, vocab, model, optimizer, scheduler, step, epoch, metrics, dataset_hash
encoder: kind, config, model_args, model_source, vocab, model, metrics, dataset_hash (enough to embed and evaluate)
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, BinaryIO, cast

import torch

from vlp_sweep.atomic import atomic_path
from vlp_sweep.errors import UserError

FORMAT = "vlp-sweep/checkpoint/1"
ENCODER_KEYS = ("format", "kind", "config", "model_args", "model_source", "vocab", "model", "metrics", "dataset_hash",
                "epoch", "step")


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class _HashingWriter(io.RawIOBase):
    """A file that hashes what it writes: the checkpoint's sha256 without reading the file back."""

    def __init__(self, f: BinaryIO) -> None:
        super().__init__()
        self.f, self.sha = f, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.sha.update(b)
        return self.f.write(b)

    def flush(self) -> None:
        self.f.flush()


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Write atomically (temporary file in the same folder, fsync, rename); returns the file's sha256,
    computed from the bytes as they are written."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            writer = _HashingWriter(f)
            torch.save({"format": FORMAT, **obj}, cast(BinaryIO, writer))
        digest = writer.sha.hexdigest()
    return digest


def link_or_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """``dest`` becomes a second name of ``src``'s complete file (a hard link: no bytes written, and a later
    rename over ``src`` leaves it as it is), or a copy where links are not possible; atomic either way."""
    with atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:  # another filesystem, or one without hard links
            shutil.copyfile(src, tmp)


def encoder_only(full: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in full.items() if k in ENCODER_KEYS} | {"kind": "encoder"}


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; anything that is not one of our checkpoints is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise UserError(f"{path}: refused by weights_only loading (not a plain checkpoint): {first}") from None
    except Exception as e:  # torch raises many types for damaged or foreign files
        raise UserError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise UserError(f"{path}: not a vlp-sweep checkpoint")
    return obj

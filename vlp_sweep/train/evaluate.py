"""Evaluate a saved checkpoint on a split: metrics, per-query ranks and example retrievals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlp_sweep.config import make_config
from vlp_sweep.errors import UserError
from vlp_sweep.train.checkpoint import load_checkpoint
from vlp_sweep.train.contract import ContrastiveModel, build_model, load_state
from vlp_sweep.train.factory import ModelDims, add_import_paths
from vlp_sweep.train.inputs import data_cache
from vlp_sweep.train.inputs.batching import SplitTensors, model_dims, storage_dtype
from vlp_sweep.train.inputs.tokenizer import WordTokenizer
from vlp_sweep.train.metrics import RetrievalResult, retrieval_metrics
from vlp_sweep.train.trainer import EVAL_TIES, embed_split, resolve_device


@dataclass
class CheckpointEval:
    result: RetrievalResult
    split: SplitTensors
    text_emb: torch.Tensor
    video_emb: torch.Tensor
    checkpoint: dict[str, Any]


def find_model_code(ckpt: dict[str, Any]) -> None:
    """Put the folder the checkpoint's model factory was imported from on ``sys.path`` when it exists
    here (same machine), so that eval and promote work from any folder. Importing it runs its code:
    evaluate checkpoints of a factory of your own only where you would run that code."""
    src = ckpt.get("model_source")
    if isinstance(src, str) and src and Path(src).is_dir():
        add_import_paths([src])


def model_from_checkpoint(ckpt: dict[str, Any], device: torch.device) -> ContrastiveModel:
    """Rebuild the checkpoint's model through its recorded factory and options (config ``model.*``),
    then load its weights. A factory that does not import is one line (``factory.resolve_factory``)."""
    find_model_code(ckpt)
    cfg = make_config(ckpt["config"])
    if not isinstance(ckpt.get("model_args"), dict):
        raise UserError("checkpoint has no model_args")
    model = build_model(cfg, ModelDims.from_dict(ckpt["model_args"], cfg.model.embed_dim)).to(device)
    load_state(model, ckpt["model"])
    return model.eval()


def evaluate_checkpoint(path: str | Path, data: str | None = None, split: str | None = None,
                        device: str = "auto", overrides: dict[str, Any] | None = None) -> CheckpointEval:
    """Re-embed ``split`` of ``data`` (defaults: those the checkpoint was trained with) and score it."""
    ckpt = load_checkpoint(path)
    find_model_code(ckpt)
    over: dict[str, Any] = {"run.device": device, **(overrides or {})}
    if data:
        over["data.path"] = data
    if split:
        over["data.eval_split"] = split
    cfg = make_config(ckpt["config"], over)
    dev = resolve_device(cfg.run.device)
    model = model_from_checkpoint(ckpt, dev)
    ds = data_cache.packed(cfg.data.path)  # a confirmation trial's worker has it already (data_cache.py)
    want, have = model.dims, model_dims(ds, cfg, len(ckpt["vocab"]))
    if (have.kpt_dim, have.siglip_dim, have.text_feature_dim) != (want.kpt_dim, want.siglip_dim, want.text_feature_dim):
        raise UserError(f"{cfg.data.path}: data dims do not match the checkpoint's model (keypoint input "
                        f"{have.kpt_dim} vs {want.kpt_dim}, siglip {have.siglip_dim} vs {want.siglip_dim}, "
                        f"text features {have.text_feature_dim} vs {want.text_feature_dim})")
    sp = data_cache.split(ds, cfg.data.eval_split, cfg.data, WordTokenizer(ckpt["vocab"]), dev, storage_dtype(dev))
    t, v = embed_split(model, sp, cfg, dev)
    res = retrieval_metrics(text=t, video=v, groups=sp.text_ids if cfg.run.eval_dedup else None, ties=EVAL_TIES)
    return CheckpointEval(res, sp, t, v, ckpt)


def top_k(ev: CheckpointEval, queries: list[int], k: int, direction: str = "t2v") -> list[list[tuple[int, float]]]:
    """For each query index, the ``k`` best (item index, score) pairs."""
    q, items = (ev.text_emb, ev.video_emb) if direction == "t2v" else (ev.video_emb, ev.text_emb)
    scores = q[queries] @ items.T
    vals, idx = scores.topk(min(k, items.shape[0]), dim=1)
    return [list(zip(i.tolist(), s.tolist())) for i, s in zip(idx, vals)]

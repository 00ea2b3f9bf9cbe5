"""A training run's state and how it is set up: device, data splits, model, optimizer, scheduler, resume.

``setup(cfg)`` gives a :class:`TrainState` ready for ``steps.train_epoch``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.errors import UserError
from vlp_sweep.train.checkpoint import load_checkpoint
from vlp_sweep.train.contract import ContrastiveModel, build_model, load_state
from vlp_sweep.train.distributed import DistContext, GatheredLoss
from vlp_sweep.train.inputs import data_cache
from vlp_sweep.train.inputs.batching import SplitTensors, model_dims, storage_dtype
from vlp_sweep.train.inputs.tokenizer import WordTokenizer
from vlp_sweep.train.loss import ContrastiveLoss
from vlp_sweep.train.schedule import lr_factor, steps_per_epoch
from vlp_sweep.train.watch.health import HealthMonitor
from vlp_sweep.train.watch.oom import OomRescue

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Everything a run carries from step to step (built by :func:`setup`; fields by name)."""

    cfg: TrainConfig
    device: torch.device
    model: ContrastiveModel
    crit: GatheredLoss  # the contrastive loss over the global batch (all processes)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    train: SplitTensors
    eval: SplitTensors
    vocab: list[str] = field(default_factory=list)
    dataset_hash: str = ""
    step: int = 0
    epoch: int = 0
    dist: DistContext = field(default_factory=DistContext)
    best_value: float | None = None  # select_metric of best.pt so far (kept across a resume) ...
    best_epoch: int | None = None  # ... its epoch ...
    best_rsum: float | None = None  # ... and its rsum: the tie-break of the one selection rule
    health: HealthMonitor | None = None
    oom: OomRescue | None = None  # halves the micro-batch when a step runs out of device memory


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"run.device={name} but no CUDA GPU is available (use run.device=cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"run.device: not a device name: {name!r}") from None


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on a GPU by default; None (fp32) on the CPU unless bf16 is asked for."""
    use_bf16 = cfg.run.precision == "bf16" or (cfg.run.precision == "auto" and device.type == "cuda")
    return torch.bfloat16 if use_bf16 else None


def autocast_for(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    dtype = autocast_dtype(cfg, device)
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def build_optimizer(model: ContrastiveModel, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel per parameter group, and no read of the step count back to the host, which the
    per-tensor fallback does every step); no weight decay on biases, norms, embeddings, positions and the logit
    scale (CLIP practice)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "pos" not in name and id(p) not in embeddings else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, fused=device.type in ("cuda", "cpu"))


def setup(cfg: TrainConfig, resume: str | Path | None = None, dist: DistContext | None = None) -> TrainState:
    """Device, data (kept for the next trial of this process: ``data_cache``), model, optimizer and
    scheduler of ``cfg``; continued from the full checkpoint ``resume`` when given."""
    device = resolve_device(cfg.run.device)
    ckpt = load_checkpoint(resume) if resume else None
    ds = data_cache.packed(cfg.data.path)
    if not cfg.data.use_kpts and not cfg.data.use_siglip:
        raise UserError("data.use_kpts and data.use_siglip are both false: the video tower has no input")
    vocab = ckpt["vocab"] if ckpt else WordTokenizer.build(ds.split(cfg.data.train_split)["text"].astype(str)).vocab
    tok = WordTokenizer(vocab)
    dtype = storage_dtype(device)
    train = data_cache.split(ds, cfg.data.train_split, cfg.data, tok, device, dtype, cfg.data.limit_train)
    evs = data_cache.split(ds, cfg.data.eval_split, cfg.data, tok, device, dtype)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg, model_dims(ds, cfg, len(tok))).to(device)  # the factory's module, wrapped
    dist = dist or DistContext()
    opt = build_optimizer(model, cfg, device)
    st = TrainState(cfg=cfg, device=device, model=model, crit=GatheredLoss(ContrastiveLoss(cfg.loss), dist),
                    opt=opt, sched=build_scheduler(opt, cfg, len(train), dist.world_size), train=train, eval=evs,
                    vocab=vocab, dataset_hash=str(ds.meta.get("content_hash", "")), dist=dist)
    speed_settings(st)
    if ckpt:
        _restore(st, ckpt)
    return st


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, n: int,
                    world: int = 1) -> torch.optim.lr_scheduler.LambdaLR:
    """Option B's schedule (``schedule.lr_factor``) over the run's optimizer steps on ``n`` training clips."""
    total = steps_per_epoch(n, cfg, world) * cfg.optim.epochs
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, total,
                                                                      cfg.optim.schedule))


def speed_settings(st: TrainState) -> None:
    """The attention backend and ``torch.compile``: what cannot be fast here falls back, with one log line
    naming what it fell back to (results do not depend on either beyond float rounding)."""
    set_attention = getattr(st.model.net, "set_attention", None)
    if set_attention is not None:
        set_attention(st.cfg.run.attention, st.device, autocast_dtype(st.cfg, st.device) or torch.float32)
    if not st.cfg.run.compile:
        return
    if st.device.type != "cuda":
        log.warning("run.compile: eager on the %s (there torch.compile's tens of seconds of compiling per trial "
                    "outweigh what it saves); compiled only on a GPU", st.device.type)
        return
    st.model.compile_model()


def _restore(st: TrainState, ckpt: dict[str, Any]) -> None:
    saved = make_config(ckpt["config"])
    if saved.model != st.cfg.model or ckpt["model_args"] != st.model.dims.to_dict():
        raise UserError("checkpoint was trained with a different model shape or data dims; cannot resume")
    if ckpt.get("kind") != "full":
        raise UserError("resume needs a full checkpoint (this one is encoder-only)")
    if ckpt.get("dataset_hash") and ckpt["dataset_hash"] != st.dataset_hash:
        raise UserError(f"checkpoint was trained on another dataset (content hash {ckpt['dataset_hash'][:12]}, "
                        f"{st.cfg.data.path} has {st.dataset_hash[:12]}); cannot resume")
    load_state(st.model, ckpt["model"])
    st.opt.load_state_dict(ckpt["optimizer"])
    st.sched.load_state_dict(ckpt["scheduler"])
    st.step, st.epoch = int(ckpt["step"]), int(ckpt["epoch"])
    best, epoch = ckpt.get("best_value"), ckpt.get("best_epoch")  # absent in older checkpoints: best.pt restarts
    if isinstance(best, (int, float)) and isinstance(epoch, int):
        st.best_value, st.best_epoch = float(best), epoch
        rsum = ckpt.get("best_rsum")
        st.best_rsum = float(rsum) if isinstance(rsum, (int, float)) else None

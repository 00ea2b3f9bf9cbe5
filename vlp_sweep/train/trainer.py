"""The shared contrastive trainer: ``fit(config, report=callback)``. Plain PyTorch: no Ray, no Parquet
writer, no CLI. Reads top to bottom: set-up, then per epoch train, evaluate, checkpoint, report.

The public API (what the sweep, tests and benchmarks use; everything else is private):

- ``fit(config, report, resume=, on_step=, dist=, health=) -> FitResult``: a whole run.
- ``state.setup(cfg, resume, dist) -> TrainState``; ``state.build_optimizer``, ``state.build_scheduler``;
  ``state.steps_per_epoch(n, cfg, world)`` and ``state.micro_batch_size``.
- ``steps.epoch_batches(state, epoch) -> StepBatch...``, ``steps.train_step(state, batch)``,
  ``steps.train_epoch(state, on_step)``, ``steps.epoch_generators(seed, epoch, device, rank)``.
- ``evaluate(state) -> Evaluation`` and ``embed_split(model, split, cfg, device)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import METRIC_NAMES, MODE
from vlp_sweep.selection import TIE_METRIC, selection_key
from vlp_sweep.train.checkpoint import link_or_copy, save_checkpoint
from vlp_sweep.train.contract import ContrastiveModel
from vlp_sweep.train.distributed import DistContext
from vlp_sweep.train.inputs.batch_plan import plan_frames
from vlp_sweep.train.inputs.batching import SplitTensors
from vlp_sweep.train.inputs.packing import build_packed, padded_batch
from vlp_sweep.train.metrics import retrieval_metrics
from vlp_sweep.train.state import TrainState, autocast_for, resolve_device, setup
from vlp_sweep.train.steps import train_epoch
from vlp_sweep.train.watch.health import HealthMonitor
from vlp_sweep.train.watch.health_config import HealthConfig
from vlp_sweep.train.watch.oom import OomRescue

__all__ = ["EVAL_TIES", "Evaluation", "FitResult", "embed_split", "evaluate", "fit", "resolve_device"]


@dataclass
class Evaluation:
    """What the trainer hands to ``report`` after each evaluation."""

    epoch: int  # 1-based number of epochs done
    step: int  # optimizer steps done
    metrics: dict[str, float]  # METRIC_NAMES (loss, infonce too) + lr, logit_scale, samples_per_s, times
    t2v_ranks: np.ndarray  # [N] per-query ranks on the eval split (1 = best)
    v2t_ranks: np.ndarray
    checkpoint: Path | None = None  # full checkpoint written for this evaluation (last.pt)
    checkpoint_sha256: str | None = None
    health: dict[str, Any] = field(default_factory=dict)  # the checklist so far (health.COLUMNS)


@dataclass
class FitResult:
    best: Evaluation  # the best evaluation of this call (a resumed run: since the resume)
    last: Evaluation
    history: list[Evaluation] = field(default_factory=list)
    best_checkpoint: tuple[int, float] | None = None  # (epoch, select_metric) of best.pt, over a resume too


Reporter = Callable[[Evaluation], None]
# Ties count against the query: a collapsed model (all embeddings equal) must score R@1 ~ 0, not 100.
EVAL_TIES = "pessimistic"


def fit(config: TrainConfig | dict[str, Any], report: Reporter | None = None, *,
        resume: str | Path | None = None, on_step: Callable[[int, int, int], None] | None = None,
        dist: DistContext | None = None, health: HealthConfig | None = None) -> FitResult:
    """Train one configuration; call ``report(evaluation)`` after every evaluation.

    ``resume`` continues from a full checkpoint (bit-for-bit on the CPU with the same config);
    ``on_step(epoch, step_in_epoch, steps_per_epoch)`` is for progress bars. With ``dist`` (a
    process group already initialised, e.g. by Ray Train) the global batch is split across processes
    and ``optim.batch_size`` is per process; only rank 0 writes checkpoints. ``health`` sets the
    thresholds of the checklist each evaluation carries (``Evaluation.health``); a NaN/inf loss or gradient
    raises ``health.NonFiniteError``; a step out of device memory is redone at half the micro-batch, down to
    ``health.min_micro_batch`` (``oom.py``). Each evaluation's metrics say where the time went:
    ``epoch_s`` (training), ``eval_s``, ``checkpoint_s`` and ``report_s`` (the previous report's call).
    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, TrainConfig) else make_config(config)
    if cfg.run.select_metric not in METRIC_NAMES:
        raise UserError(f"run.select_metric: unknown metric '{cfg.run.select_metric}'")
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    st = setup(cfg, resume, dist or DistContext())
    health = health or HealthConfig()
    st.oom = OomRescue(health.min_micro_batch, st.device)
    st.health = HealthMonitor(health, st.device, {"kpts": cfg.data.use_kpts, "siglip": cfg.data.use_siglip},
                              cfg.optim.epochs, st.oom)
    history: list[Evaluation] = []
    best: Evaluation | None = None
    times = {"setup_s": time.perf_counter() - t_start, "report_s": 0.0}
    while st.epoch < cfg.optim.epochs:
        t0 = time.perf_counter()
        train_losses, samples = train_epoch(st, on_step)
        t1 = time.perf_counter()
        if st.epoch % cfg.run.eval_every == 0 or st.epoch == cfg.optim.epochs:
            ev = evaluate(st)
            t2 = time.perf_counter()
            ev.metrics |= {**train_losses, "samples_per_s": samples / max(t1 - t0, 1e-9), "epoch_s": t1 - t0,
                           "eval_s": t2 - t1, "elapsed_s": t2 - t_start, **times}
            ev.health = st.health.on_evaluation(ev.epoch, ev.metrics)
            best = ev if best is None or _better(ev, best, cfg.run.select_metric) else best
            _save(st, ev, is_best=_new_best(st, ev))
            ev.metrics["checkpoint_s"] = time.perf_counter() - t2
            history.append(ev)
            if report is not None:
                t3 = time.perf_counter()
                report(ev)
                times["report_s"] = time.perf_counter() - t3
    if not history:  # resumed from a checkpoint of the final epoch: evaluate once so callers get numbers
        history.append(evaluate(st))
        best = history[-1]
    assert best is not None
    saved = (st.best_epoch, st.best_value) if st.best_epoch is not None and st.best_value is not None else None
    return FitResult(best=best, last=history[-1], history=history, best_checkpoint=saved)


def _key(values: dict[str, Any], epoch: int | None, metric: str) -> tuple[float, float, float]:
    return selection_key(values, epoch, metric, MODE[metric])


def _better(ev: Evaluation, than: Evaluation, metric: str) -> bool:
    return _key(ev.metrics, ev.epoch, metric) < _key(than.metrics, than.epoch, metric)


def _new_best(st: TrainState, ev: Evaluation) -> bool:
    """best.pt: the sweep's one rule (metric, then rsum, then the earlier epoch), over a resume too; a NaN
    best never blocks a real number (non-finite values sort last)."""
    m = st.cfg.run.select_metric
    is_best = st.best_epoch is None or _key(ev.metrics, ev.epoch, m) < _key(
        {m: st.best_value, TIE_METRIC: st.best_rsum}, st.best_epoch, m)
    if is_best:
        st.best_value, st.best_epoch, st.best_rsum = ev.metrics[m], ev.epoch, ev.metrics.get(TIE_METRIC)
    return is_best


@torch.no_grad()
def embed_split(model: ContrastiveModel, split: SplitTensors, cfg: TrainConfig, device: torch.device) -> tuple[
        torch.Tensor, torch.Tensor]:
    """Text and video embeddings ``[N, E]`` (float32) of a whole split, in evaluation mode: centre windows,
    ``run.eval_batch_size`` clips per forward, nothing read back from the device."""
    model.eval()
    texts, videos = [], []
    bs, data = cfg.run.eval_batch_size, cfg.data
    for i in range(0, len(split), bs):
        plan = plan_frames(np.arange(i, min(i + bs, len(split))), split.length_host, data.max_frames,
                           data.frame_sampling)
        b = build_packed(split, plan, data, None, None, data.max_text_len) if model.packed_input \
            else padded_batch(split, plan, None, None)
        with autocast_for(cfg, device):
            out = model(b)
        texts.append(out["text"])
        videos.append(out["video"])
    model.train()
    return torch.cat(texts), torch.cat(videos)


def evaluate(st: TrainState) -> Evaluation:
    """Retrieval metrics, both losses, lr and logit scale on the eval split (one read from the device)."""
    t, v = embed_split(st.model, st.eval, st.cfg, st.device)
    groups = st.eval.text_ids if st.cfg.run.eval_dedup else None
    res = retrieval_metrics(text=t, video=v, groups=groups, ties=EVAL_TIES)
    metrics = dict(res.metrics)
    metrics |= _eval_losses(st, t, v)
    metrics["lr"] = float(st.opt.param_groups[0]["lr"])
    return Evaluation(st.epoch, st.step, metrics, res.t2v_ranks, res.v2t_ranks)


@torch.no_grad()
def _eval_losses(st: TrainState, t: torch.Tensor, v: torch.Tensor, block: int = 1024) -> dict[str, float]:
    """``eval_loss`` (the trial's own loss) and ``eval_infonce`` (plain InfoNCE at the same logit scale):
    means over consecutive blocks of the eval split (the full N x N is not needed); with the logit scale,
    read from the device in one copy."""
    rows = []
    for i in range(0, len(t), block):
        if len(t) - i < 2:
            break
        sl = slice(i, i + block)
        out = st.crit.loss(v[sl], t[sl], st.model.logit_scale, st.eval.text_ids[sl])
        rows.append(torch.stack([out["loss"], out["infonce"]]))
    scale = st.model.logit_scale.detach().float().exp().reshape(1)
    if not rows:
        return {"eval_loss": math.nan, "eval_infonce": math.nan, "logit_scale": float(scale)}
    loss, infonce, logit_scale = torch.cat([torch.stack(rows).mean(0), scale]).tolist()
    return {"eval_loss": loss, "eval_infonce": infonce, "logit_scale": logit_scale}


def checkpoint_dict(st: TrainState, ev: Evaluation) -> dict[str, Any]:
    return {"kind": "full", "config": st.cfg.to_dict(), "model_args": st.model.dims.to_dict(),
            "model_source": st.model.source or "", "vocab": st.vocab,
            "model": st.model.state_dict(), "optimizer": st.opt.state_dict(), "scheduler": st.sched.state_dict(),
            "step": st.step, "epoch": st.epoch, "metrics": dict(ev.metrics), "dataset_hash": st.dataset_hash,
            "best_value": st.best_value, "best_epoch": st.best_epoch, "best_rsum": st.best_rsum}


def _save(st: TrainState, ev: Evaluation, is_best: bool) -> None:
    if not st.cfg.run.out_dir or st.dist.rank != 0:
        return
    out = Path(st.cfg.run.out_dir)
    ev.checkpoint = out / "last.pt"
    ev.checkpoint_sha256 = save_checkpoint(checkpoint_dict(st, ev), ev.checkpoint)
    if is_best:  # the same bytes: a second name for them, not a second write
        link_or_copy(ev.checkpoint, out / "best.pt")

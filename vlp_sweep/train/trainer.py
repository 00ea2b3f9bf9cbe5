"""The shared contrastive trainer: ``fit(config, report=callback)``. Plain PyTorch: no Ray, no Parquet
writer, no CLI. Reads top to bottom: device, data, model, optimizer, loop; helpers are small.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import METRIC_NAMES, MODE
from vlp_sweep.selection import TIE_METRIC, selection_key
from vlp_sweep.train import data_cache
from vlp_sweep.train.accumulate import LossFn, accumulate_gradients, cached_backward
from vlp_sweep.train.batching import SplitTensors, make_batch, model_dims, storage_dtype
from vlp_sweep.train.checkpoint import load_checkpoint, save_checkpoint
from vlp_sweep.train.contract import ContrastiveModel, build_model, load_state
from vlp_sweep.train.distributed import DistContext, GatheredLoss, shard, sum_gradients
from vlp_sweep.train.health import HealthMonitor
from vlp_sweep.train.health_config import HealthConfig
from vlp_sweep.train.loss import ContrastiveLoss
from vlp_sweep.train.metrics import retrieval_metrics
from vlp_sweep.train.oom import OomRescue
from vlp_sweep.train.schedule import lr_factor
from vlp_sweep.train.tokenizer import WordTokenizer


@dataclass
class Evaluation:
    """What the trainer hands to ``report`` after each evaluation."""

    epoch: int  # 1-based number of epochs done
    step: int  # optimizer steps done
    metrics: dict[str, float]  # METRIC_NAMES (loss, infonce too) + lr, logit_scale, samples_per_s, epoch_s, elapsed_s
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"run.device={name} but no CUDA GPU is available (use run.device=cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"run.device: not a device name: {name!r}") from None


def autocast_for(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on a GPU by default; fp32 on the CPU unless bf16 is asked for."""
    use_bf16 = cfg.run.precision == "bf16" or (cfg.run.precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _seed_epoch(seed: int, epoch: int, device: torch.device, rank: int = 0) -> tuple[torch.Generator,
                                                                                    torch.Generator]:
    """Every epoch's randomness derives from (seed, epoch, rank): a resumed run replays it exactly.

    Returns (batches, augmentation). The batch generator is the same on every process, so all draw one
    permutation and the global batch is consistent; augmentation (crop window, speed, affine, noise,
    masks) and dropout differ per process, or clip j of every process's shard would get the same draws.
    """
    s = (seed * 1_000_003 + epoch * 7919) % (2**63)
    torch.manual_seed(s + 104_729 * rank)  # dropout
    # 63 bits: a seed every generator type (CPU, CUDA) takes as a non-negative int64
    aug_seed = int(np.random.SeedSequence([seed % 2**63, epoch, rank, 1]).generate_state(1, np.uint64)[0]) % 2**63
    return (torch.Generator(device=device).manual_seed(s + 1),
            torch.Generator(device=device).manual_seed(aug_seed))


@dataclass
class _State:
    cfg: TrainConfig
    device: torch.device
    model: ContrastiveModel
    crit: GatheredLoss  # the contrastive loss over the global batch (all processes)
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    train: SplitTensors
    eval: SplitTensors
    vocab: list[str]
    dataset_hash: str
    step: int = 0
    epoch: int = 0
    dist: DistContext = field(default_factory=DistContext)
    best_value: float | None = None  # select_metric of best.pt so far (kept across a resume) ...
    best_epoch: int | None = None  # ... its epoch ...
    best_rsum: float | None = None  # ... and its rsum: the tie-break of the one selection rule
    health: HealthMonitor | None = None
    oom: OomRescue | None = None  # halves the micro-batch when a step runs out of device memory


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
    ``health.min_micro_batch`` (``oom.py``).
    """
    cfg = config if isinstance(config, TrainConfig) else make_config(config)
    if cfg.run.select_metric not in METRIC_NAMES:
        raise UserError(f"run.select_metric: unknown metric '{cfg.run.select_metric}'")
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    st = _setup(cfg, resume, dist or DistContext())
    health = health or HealthConfig()
    st.oom = OomRescue(health.min_micro_batch, st.device)
    st.health = HealthMonitor(health, st.device, {"kpts": cfg.data.use_kpts, "siglip": cfg.data.use_siglip},
                              cfg.optim.epochs, st.oom)
    history: list[Evaluation] = []
    best: Evaluation | None = None
    t_start = time.perf_counter()
    while st.epoch < cfg.optim.epochs:
        t0 = time.perf_counter()
        train_losses, samples = _train_epoch(st, on_step)
        epoch_s = time.perf_counter() - t0
        if st.epoch % cfg.run.eval_every == 0 or st.epoch == cfg.optim.epochs:
            ev = _evaluate(st)
            ev.metrics |= {**train_losses, "samples_per_s": samples / max(epoch_s, 1e-9), "epoch_s": epoch_s,
                           "elapsed_s": time.perf_counter() - t_start}
            m = cfg.run.select_metric
            ev.health = st.health.on_evaluation(ev.epoch, ev.metrics)
            best = ev if best is None or _key(ev.metrics, ev.epoch, m) < _key(best.metrics, best.epoch, m) else best
            # best.pt: the sweep's one rule (metric, then rsum, then the earlier epoch), over a resume too;
            # a NaN best never blocks a real number (non-finite values sort last)
            is_best = st.best_epoch is None or _key(ev.metrics, ev.epoch, m) < _key(
                {m: st.best_value, TIE_METRIC: st.best_rsum}, st.best_epoch, m)
            if is_best:
                st.best_value, st.best_epoch, st.best_rsum = ev.metrics[m], ev.epoch, ev.metrics.get(TIE_METRIC)
            _save(st, ev, is_best=is_best)
            history.append(ev)
            if report is not None:
                report(ev)
    if not history:  # resumed from a checkpoint of the final epoch: evaluate once so callers get numbers
        history.append(_evaluate(st))
        best = history[-1]
    assert best is not None
    saved = (st.best_epoch, st.best_value) if st.best_epoch is not None and st.best_value is not None else None
    return FitResult(best=best, last=history[-1], history=history, best_checkpoint=saved)


def _key(values: dict[str, Any], epoch: int | None, metric: str) -> tuple[float, float, float]:
    return selection_key(values, epoch, metric, MODE[metric])


def _setup(cfg: TrainConfig, resume: str | Path | None, dist: DistContext | None = None) -> _State:
    device = resolve_device(cfg.run.device)
    ckpt = load_checkpoint(resume) if resume else None
    ds = data_cache.packed(cfg.data.path)  # a reused worker's next trial reads it once (data_cache.py)
    if not cfg.data.use_kpts and not cfg.data.use_siglip:
        raise UserError("data.use_kpts and data.use_siglip are both false: the video tower has no input")
    vocab = ckpt["vocab"] if ckpt else WordTokenizer.build(ds.split(cfg.data.train_split)["text"].astype(str)).vocab
    tok = WordTokenizer(vocab)
    dtype = storage_dtype(device)
    train = data_cache.split(ds, cfg.data.train_split, cfg.data, tok, device, dtype, cfg.data.limit_train)
    evs = data_cache.split(ds, cfg.data.eval_split, cfg.data, tok, device, dtype)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg, model_dims(ds, cfg, len(tok))).to(device)  # the factory's module, wrapped
    opt = _optimizer(model, cfg, device)
    dist = dist or DistContext()
    steps_per_epoch = _steps_per_epoch(len(train), cfg, dist.world_size)
    total = steps_per_epoch * cfg.optim.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, cfg.optim.warmup_steps, total, cfg.optim.schedule))
    if cfg.run.compile:
        model.compile_model()
    st = _State(cfg, device, model, GatheredLoss(ContrastiveLoss(cfg.loss), dist), opt, sched, train,
                evs, vocab, str(ds.meta.get("content_hash", "")), dist=dist)
    if ckpt:
        _restore(st, ckpt)
    return st


def _optimizer(model: ContrastiveModel, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # No weight decay on biases, norms, embeddings, positions and the logit scale (CLIP practice).
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 and "pos" not in name and id(p) not in embeddings else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, fused=device.type == "cuda")


def _micro_size(n: int, cfg: TrainConfig, world: int = 1) -> int:
    """Clips per micro-batch per process (fewer than optim.batch_size only for a tiny split)."""
    micro = min(cfg.optim.batch_size, n // (cfg.optim.grad_accum * world))
    if micro < 2:
        raise UserError(f"training split has {n} clips: too few for optim.grad_accum={cfg.optim.grad_accum}"
                        f"{f' on {world} processes' if world > 1 else ''}")
    return micro


def _steps_per_epoch(n: int, cfg: TrainConfig, world: int = 1) -> int:
    return max(1, n // (_micro_size(n, cfg, world) * cfg.optim.grad_accum * world))


def _restore(st: _State, ckpt: dict[str, Any]) -> None:
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


def _batches(st: _State, gen: torch.Generator,
             aug_gen: torch.Generator | None = None) -> Iterator[list[dict[str, torch.Tensor]]]:
    """One epoch of optimizer steps, each a list of ``grad_accum`` micro-batches (drop_last): the
    permutation drawn from ``gen`` (shared by all processes), augmentation from ``aug_gen`` (this
    process's own; ``gen`` when not given)."""
    n, accum, world = len(st.train), st.cfg.optim.grad_accum, st.dist.world_size
    micro = _micro_size(n, st.cfg, world) * world  # a global micro-batch; each process takes its shard
    perm = torch.randperm(n, device=st.device, generator=gen)
    for s in range(_steps_per_epoch(n, st.cfg, world)):
        chunk = perm[s * micro * accum:(s + 1) * micro * accum]
        yield [make_batch(st.train, shard(chunk[i * micro:(i + 1) * micro], st.dist), st.cfg.data, st.cfg.aug,
                          aug_gen or gen) for i in range(accum)]


def _train_epoch(st: _State, on_step: Callable[[int, int, int], None] | None = None) -> tuple[dict[str, float],
                                                                                            int]:
    """One epoch; returns the mean ``loss`` and ``infonce`` over its steps, and the clips seen."""
    st.model.train()
    gen, aug_gen = _seed_epoch(st.cfg.run.seed, st.epoch, st.device, st.dist.rank)
    total = torch.zeros(2, device=st.device)  # loss, infonce: summed on the device, one sync per epoch
    steps = samples = 0
    for micro_batches in _batches(st, gen, aug_gen):
        if st.health is not None:
            st.health.observe(micro_batches[0])
        out = train_step(st, micro_batches)
        total += torch.stack([out["loss"], out["infonce"]])
        steps += 1
        samples += sum(len(b["tokens"]) for b in micro_batches)
        if on_step is not None:
            on_step(st.epoch, steps, _steps_per_epoch(len(st.train), st.cfg, st.dist.world_size))
    if st.health is not None:
        st.health.end_epoch()
    st.epoch += 1
    loss, infonce = (total / max(steps, 1)).tolist()
    return {"loss": loss, "infonce": infonce}, samples


def train_step(st: _State, micro_batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One optimizer step over ``micro_batches``; returns ``loss`` and ``infonce`` on the device. Host
    syncs: one per micro-batch with length groups (their widths), none without."""
    losses = _backward(st, micro_batches)
    sum_gradients(st.model, st.dist)
    grads = [p.grad for p in st.model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if st.cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grads_with_norm_(st.model.parameters(), st.cfg.optim.grad_clip, norm)
    if st.health is not None:  # a NaN/inf loss or gradient stops the run before the step spreads it
        st.health.after_backward(losses["loss"], norm, st.epoch, st.step)
    st.opt.step()
    st.sched.step()
    st.opt.zero_grad(set_to_none=True)
    with torch.no_grad():  # the loss does not clamp (it would stop the gradient): the parameter is, as in open_clip
        st.model.logit_scale.clamp_(0.0, math.log(st.cfg.loss.max_logit_scale))
    st.step += 1
    return losses


def _backward(st: _State, micro_batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The step's forward and backward; out of device memory, the rescue cuts the micro-batches (oom.py)."""
    def autocast() -> contextlib.AbstractContextManager[Any]:
        return autocast_for(st.cfg, st.device)

    def step(mbs: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return accumulate_gradients(st.cfg.optim.accum_mode, st.model, st.crit, mbs, autocast)

    def cached(chunks: Sequence[dict[str, torch.Tensor]], scale: float) -> dict[str, torch.Tensor]:
        return cached_backward(st.model, _scaled(st.crit, scale), chunks, autocast)

    if st.oom is None:
        return step(micro_batches)
    return st.oom.run(micro_batches, st.cfg.optim.accum_mode, step, cached,
                      lambda: st.opt.zero_grad(set_to_none=True), f"epoch {st.epoch + 1} step {st.step + 1}")


def _scaled(loss_fn: LossFn, scale: float) -> LossFn:
    if scale == 1.0:
        return loss_fn
    return lambda *args: {k: v * scale for k, v in loss_fn(*args).items()}


@torch.no_grad()
def embed_split(model: ContrastiveModel, split: SplitTensors, cfg: TrainConfig, device: torch.device) -> tuple[
        torch.Tensor, torch.Tensor]:
    """Text and video embeddings ``[N, E]`` (float32) of a whole split, in evaluation mode."""
    model.eval()
    texts, videos = [], []
    bs = cfg.run.eval_batch_size
    for i in range(0, len(split), bs):
        idx = torch.arange(i, min(i + bs, len(split)), device=device)
        b = make_batch(split, idx, cfg.data, None, None)
        with autocast_for(cfg, device):
            out = model(b)
        texts.append(out["text"])
        videos.append(out["video"])
    model.train()
    return torch.cat(texts), torch.cat(videos)


def _evaluate(st: _State) -> Evaluation:
    t, v = embed_split(st.model, st.eval, st.cfg, st.device)
    groups = st.eval.text_ids if st.cfg.run.eval_dedup else None
    res = retrieval_metrics(text=t, video=v, groups=groups, ties=EVAL_TIES)
    metrics = dict(res.metrics)
    metrics |= _eval_losses(st, t, v)
    metrics["lr"] = float(st.opt.param_groups[0]["lr"])
    metrics["logit_scale"] = float(st.model.logit_scale.detach().exp())
    return Evaluation(st.epoch, st.step, metrics, res.t2v_ranks, res.v2t_ranks)


@torch.no_grad()
def _eval_losses(st: _State, t: torch.Tensor, v: torch.Tensor, block: int = 1024) -> dict[str, float]:
    """``eval_loss`` (the trial's own loss) and ``eval_infonce`` (plain InfoNCE at the same logit scale):
    means over consecutive blocks of the eval split (the full N x N is not needed)."""
    rows = []
    for i in range(0, len(t), block):
        if len(t) - i < 2:
            break
        sl = slice(i, i + block)
        out = st.crit.loss(v[sl], t[sl], st.model.logit_scale, st.eval.text_ids[sl])
        rows.append((float(out["loss"]), float(out["infonce"])))
    loss, infonce = np.mean(rows, axis=0).tolist() if rows else (math.nan, math.nan)
    return {"eval_loss": loss, "eval_infonce": infonce}


def checkpoint_dict(st: _State, ev: Evaluation) -> dict[str, Any]:
    return {"kind": "full", "config": st.cfg.to_dict(), "model_args": st.model.dims.to_dict(),
            "model_source": st.model.source or "", "vocab": st.vocab,
            "model": st.model.state_dict(), "optimizer": st.opt.state_dict(), "scheduler": st.sched.state_dict(),
            "step": st.step, "epoch": st.epoch, "metrics": dict(ev.metrics), "dataset_hash": st.dataset_hash,
            "best_value": st.best_value, "best_epoch": st.best_epoch, "best_rsum": st.best_rsum}


def _save(st: _State, ev: Evaluation, is_best: bool) -> None:
    if not st.cfg.run.out_dir or st.dist.rank != 0:
        return
    out = Path(st.cfg.run.out_dir)
    obj = checkpoint_dict(st, ev)
    ev.checkpoint = out / "last.pt"
    ev.checkpoint_sha256 = save_checkpoint(obj, ev.checkpoint)
    if is_best:
        save_checkpoint(obj, out / "best.pt")

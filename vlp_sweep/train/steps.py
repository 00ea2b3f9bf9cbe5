"""One epoch of optimizer steps: batches planned on the host, built on the device, forward and backward,
clipping, the optimizer step. No step reads a value back from the device (``bench_trainer.py --count``
counts them; ``tests/train/test_steps.py`` holds the count at zero): losses are summed on the device and
read once per epoch, the finite check polls a non-blocking copy (``watch.health.FiniteGuard``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vlp_sweep.train.accumulate import cached_backward, naive_backward, step_backward
from vlp_sweep.train.distributed import shard, sum_gradients
from vlp_sweep.train.inputs.batch_plan import FramePlan, epoch_rng, plan_frames
from vlp_sweep.train.inputs.packing import Batch, batch_len, build_packed, padded_batch, select_clips
from vlp_sweep.train.schedule import micro_batch_size, steps_per_epoch
from vlp_sweep.train.state import TrainState, autocast_for


@dataclass
class StepBatch:
    """One optimizer step's clips on this process: ``packed`` (the whole step, for a model that takes packed
    batches) or ``micro_batches`` (padded dicts, one per micro-batch, for a model of your own)."""

    micro: int  # clips per micro-batch on this process
    packed: Batch | None = None
    micro_batches: list[Batch] | None = None

    @property
    def clips(self) -> int:
        if self.packed is not None:
            return batch_len(self.packed)
        assert self.micro_batches is not None
        return sum(batch_len(b) for b in self.micro_batches)

    def parts(self) -> list[Batch]:
        """The step as a list of micro-batches (views of the packed batch: no copy)."""
        if self.micro_batches is not None:
            return self.micro_batches
        assert self.packed is not None
        n = batch_len(self.packed)
        return [select_clips(self.packed, i, min(i + self.micro, n)) for i in range(0, n, self.micro)]


def epoch_generators(seed: int, epoch: int, device: torch.device, rank: int = 0) -> tuple[
        np.random.Generator, np.random.Generator, torch.Generator]:
    """Every epoch's randomness derives from (seed, epoch, rank), so a resumed run replays it exactly: the
    batch order (the same on every process: one global permutation), this process's frame windows and
    masks (host), and its keypoint augmentation (device). Seeds dropout too (the global torch RNG)."""
    s = (seed * 1_000_003 + epoch * 7919) % (2**63)
    torch.manual_seed(s + 104_729 * rank)  # dropout
    order, draws = epoch_rng(seed, epoch, rank)
    aug_seed = int(np.random.SeedSequence([seed % 2**63, epoch, rank, 1]).generate_state(1, np.uint64)[0]) % 2**63
    return order, draws, torch.Generator(device=device).manual_seed(aug_seed)


def step_plans(st: TrainState, order: np.random.Generator, draws: np.random.Generator) -> Iterator[
        tuple[FramePlan, int]]:
    """One epoch of (this process's plan of one optimizer step, clips per micro-batch): the permutation
    from ``order``, each process's shard of every global micro-batch, windows and masks from ``draws``."""
    n, accum, world = len(st.train), st.cfg.optim.grad_accum, st.dist.world_size
    micro = micro_batch_size(n, st.cfg, world)
    glob = micro * world  # a global micro-batch; each process takes its shard
    perm = order.permutation(n)
    data = st.cfg.data
    for s in range(steps_per_epoch(n, st.cfg, world)):
        chunk = perm[s * glob * accum:(s + 1) * glob * accum]
        clips = np.concatenate([shard(chunk[i * glob:(i + 1) * glob], st.dist) for i in range(accum)])
        yield plan_frames(clips, st.train.length_host, data.max_frames, data.frame_sampling, st.cfg.aug, draws), micro


def build_step(st: TrainState, plan: FramePlan, micro: int, gen: torch.Generator | None) -> StepBatch:
    """The step's batch on the device, in the form the model takes."""
    if st.model.packed_input:
        return StepBatch(micro, packed=build_packed(st.train, plan, st.cfg.data, st.cfg.aug, gen,
                                                    st.cfg.data.max_text_len))
    parts: list[Batch] = [padded_batch(st.train, plan.select(i, min(i + micro, len(plan))), st.cfg.aug, gen)
             for i in range(0, len(plan), micro)]
    return StepBatch(micro, micro_batches=parts)


def epoch_batches(st: TrainState, epoch: int | None = None) -> Iterator[StepBatch]:
    """The step batches of ``epoch`` (default: the next one), as :func:`train_epoch` draws them."""
    order, draws, gen = epoch_generators(st.cfg.run.seed, st.epoch if epoch is None else epoch, st.device,
                                         st.dist.rank)
    for plan, micro in step_plans(st, order, draws):
        yield build_step(st, plan, micro, gen)


def train_epoch(st: TrainState, on_step: Callable[[int, int, int], None] | None = None) -> tuple[
        dict[str, float], int]:
    """One epoch; returns the mean ``loss`` and ``infonce`` over its steps (read from the device once), and
    the clips seen."""
    st.model.train()
    total = torch.zeros(2, device=st.device)  # loss, infonce: summed on the device
    steps = samples = 0
    n_steps = steps_per_epoch(len(st.train), st.cfg, st.dist.world_size)
    for batch in epoch_batches(st):
        if st.health is not None:
            st.health.observe(batch.packed if batch.packed is not None else batch.parts()[0], batch.micro)
        out = train_step(st, batch)
        total += torch.stack([out["loss"], out["infonce"]])
        steps += 1
        samples += batch.clips
        if on_step is not None:
            on_step(st.epoch, steps, n_steps)
    if st.health is not None:
        st.health.end_epoch()
    st.epoch += 1
    loss, infonce = (total / max(steps, 1)).tolist()  # the epoch's one read
    return {"loss": loss, "infonce": infonce}, samples


def train_step(st: TrainState, batch: StepBatch) -> dict[str, torch.Tensor]:
    """One optimizer step; returns ``loss`` and ``infonce`` on the device (no host sync)."""
    losses = step_gradients(st, batch)
    sum_gradients(st.model, st.dist)
    grads = [p.grad for p in st.model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if st.cfg.optim.grad_clip > 0:
        torch.nn.utils.clip_grads_with_norm_(st.model.parameters(), st.cfg.optim.grad_clip, norm)
    if st.health is not None:  # a NaN/inf loss or gradient stops the run (judged a step or two later)
        st.health.after_backward(losses["loss"], norm, st.epoch, st.step)
    st.opt.step()
    st.sched.step()
    st.opt.zero_grad(set_to_none=True)
    with torch.no_grad():  # the loss does not clamp (it would stop the gradient): the parameter is, as in open_clip
        st.model.logit_scale.clamp_(0.0, math.log(st.cfg.loss.max_logit_scale))
    st.step += 1
    return losses


def step_gradients(st: TrainState, batch: StepBatch) -> dict[str, torch.Tensor]:
    """The step's forward and backward (its gradients in ``.grad``; returns ``loss`` and ``infonce``); out of
    device memory, the rescue cuts the micro-batches (oom.py)."""
    def autocast():  # type: ignore[no-untyped-def]
        return autocast_for(st.cfg, st.device)

    mode = st.cfg.optim.accum_mode

    def step(mbs: Sequence[Batch]) -> dict[str, torch.Tensor]:
        if batch.packed is not None:  # the whole step at once (mbs are views of it)
            return step_backward(mode, st.model, st.crit, batch.packed, batch.micro, autocast,
                                 recompute=st.oom is not None and st.oom.recompute)
        if mode == "cached" and len(mbs) > 1:
            return cached_backward(st.model, st.crit, mbs, autocast)
        return naive_backward(st.model, st.crit, mbs, autocast)

    def cached(chunks: Sequence[Batch], scale: float) -> dict[str, torch.Tensor]:
        return cached_backward(st.model, _scaled(st.crit, scale), chunks, autocast)

    if st.oom is None:
        return step(batch.parts())
    return st.oom.run(batch.parts(), mode, step, cached, lambda: st.opt.zero_grad(set_to_none=True),
                      f"epoch {st.epoch + 1} step {st.step + 1}", whole=batch.packed is not None)


def _scaled(loss_fn: Callable[..., dict[str, torch.Tensor]], scale: float) -> Callable[..., dict[str, torch.Tensor]]:
    if scale == 1.0:
        return loss_fn
    return lambda *args: {k: v * scale for k, v in loss_fn(*args).items()}

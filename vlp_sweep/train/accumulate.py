"""Gradient accumulation over the micro-batches of one optimizer step: naive and cached.

Every function here runs forward and backward only: it adds the step's parameter gradients to ``.grad``
and returns the step's ``loss`` and plain ``infonce`` (detached, on the device). The all-reduce across
processes, clipping and the optimizer step stay with the caller (``trainer.train_step``).

- naive: what the plan's script did; each micro-batch's loss sees only its own negatives, and the
  gradients of the micro-batch losses (each divided by their number) add up.
- cached: the loss over the whole effective batch, so accumulation really adds negatives; its parameter
  gradients equal those of one full-batch step.

Two ways to run them, by the model's input form:

- :func:`step_backward` (a model that takes packed batches, the built-in one): the whole step's clips in one
  forward and one backward, whatever the micro-batches: the fastest way while it fits in memory. When it
  does not (``oom.OomRescue``), the same step with its layers recomputed in the backward (activation
  checkpointing: one extra forward, as GradCache, memory near one layer's), then GradCache over the
  micro-batches. Naive mode takes each micro-batch's loss from its slice of the forward.
- :func:`accumulate_gradients` (a model of your own, the padded dict): micro-batch by micro-batch, cached as
  GradCache (Gao et al., 2021): embed every micro-batch without a graph, take the loss and its gradient
  w.r.t. the embeddings, then re-embed each micro-batch with a graph (the same dropout RNG) and backprop
  the cached gradients.

A ``loss_fn`` is called as ``loss_fn(video, text, logit_scale, text_ids)`` and returns a dict with
``loss`` (what to backprop) and ``infonce`` (e.g. :class:`~vlp_sweep.train.distributed.GatheredLoss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from vlp_sweep.train.contract import ContrastiveModel
from vlp_sweep.train.inputs.packing import Batch, batch_len, batch_text_ids

LossFn = Callable[..., dict[str, Tensor]]
Autocast = Callable[[], contextlib.AbstractContextManager[Any]]
RngState = tuple[Tensor, Tensor | None]


def step_backward(mode: str, model: ContrastiveModel, loss_fn: LossFn, batch: Batch, micro: int,
                  autocast: Autocast = contextlib.nullcontext, recompute: bool = False) -> dict[str, Tensor]:
    """Forward and backward of a whole step's ``batch`` (its micro-batches are consecutive slices of
    ``micro`` clips); ``mode`` is ``optim.accum_mode``; ``recompute``: activation checkpointing."""
    n = batch_len(batch)
    model.set_recompute(recompute)
    with autocast():
        out = model(batch)
    ids = batch_text_ids(batch)
    if mode == "cached" or n <= micro:
        res = loss_fn(out["video"], out["text"], out["logit_scale"], ids)
        res["loss"].backward()
        return {"loss": res["loss"].detach(), "infonce": res["infonce"].detach()}
    parts = [loss_fn(out["video"][i:i + micro], out["text"][i:i + micro], out["logit_scale"], ids[i:i + micro])
             for i in range(0, n, micro)]
    loss = torch.stack([p["loss"] for p in parts]).mean()
    loss.backward()
    return {"loss": loss.detach(), "infonce": torch.stack([p["infonce"].detach() for p in parts]).mean()}


def accumulate_gradients(mode: str, model: ContrastiveModel, loss_fn: LossFn, micro_batches: Sequence[Batch],
                         autocast: Autocast = contextlib.nullcontext) -> dict[str, Tensor]:
    """Backward over one optimizer step's ``micro_batches``: ``mode`` is ``optim.accum_mode``.

    A single micro-batch is the full batch: both modes are the same there, and naive is cheaper.
    """
    if mode == "cached" and len(micro_batches) > 1:
        return cached_backward(model, loss_fn, micro_batches, autocast)
    return naive_backward(model, loss_fn, micro_batches, autocast)


def naive_backward(model: ContrastiveModel, loss_fn: LossFn, micro_batches: Sequence[Batch],
                   autocast: Autocast = contextlib.nullcontext) -> dict[str, Tensor]:
    """Each micro-batch sees only its own negatives; returns the means over the micro-batches."""
    zero = torch.zeros((), device=_device(micro_batches))
    total = {"loss": zero, "infonce": zero}
    for b in micro_batches:
        with autocast():
            out = model(b)
        res = loss_fn(out["video"], out["text"], out["logit_scale"], batch_text_ids(b))
        (res["loss"] / len(micro_batches)).backward()
        total = {k: v + res[k].detach() / len(micro_batches) for k, v in total.items()}
    return total


def cached_backward(model: ContrastiveModel, loss_fn: LossFn, micro_batches: Sequence[Batch],
                    autocast: Autocast = contextlib.nullcontext) -> dict[str, Tensor]:
    """GradCache: the loss over the whole effective batch; returns it (and its plain InfoNCE).

    1) embed every micro-batch without a graph; 2) the loss and its gradient w.r.t. the embeddings;
    3) re-embed each micro-batch with a graph (the same dropout RNG) and backprop the cached gradients.
    Costs a second forward.
    """
    device = _device(micro_batches)
    model.set_recompute(False)
    states, videos, texts = [], [], []
    with torch.no_grad():
        for b in micro_batches:
            states.append(rng_state(device))
            with autocast():
                out = model(b)
            videos.append(out["video"])
            texts.append(out["text"])
    v = torch.cat(videos).requires_grad_()
    t = torch.cat(texts).requires_grad_()
    ids = torch.cat([batch_text_ids(b) for b in micro_batches])
    res = loss_fn(v, t, model.logit_scale, ids)
    res["loss"].backward()  # grads for v, t and the logit scale
    assert v.grad is not None and t.grad is not None
    start = 0
    for b, state in zip(micro_batches, states):
        n = batch_len(b)
        set_rng_state(state, device)
        with autocast():
            out = model(b)
        torch.autograd.backward([out["video"], out["text"]], [v.grad[start:start + n], t.grad[start:start + n]])
        start += n
    return {"loss": res["loss"].detach(), "infonce": res["infonce"].detach()}


def rng_state(device: torch.device) -> RngState:
    """The global RNG state that dropout draws from (the CPU one, and the device's on a GPU)."""
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def set_rng_state(state: RngState, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _device(micro_batches: Sequence[Batch]) -> torch.device:
    return batch_text_ids(micro_batches[0]).device

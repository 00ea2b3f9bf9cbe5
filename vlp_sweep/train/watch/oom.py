"""Out of memory in a training step, handled the way the plan wished it were: halve the micro-batch and
double the cached accumulation, then redo the same step.

GradCache computes the loss over the whole step whatever the micro-batches are, so cutting each of the
step's micro-batches in two leaves the effective batch, the negatives each example sees and the gradients
as they were (``test_gradcache_over_micro_batches_equals_the_full_batch_gradient``). Under naive accumulation each
micro-batch keeps its own negatives: its chunks go through GradCache together, scaled as the naive loss
is. The chunks are cut from the micro-batches already built (same clips, same augmentation draws), the
retry starts from the RNG state the failed try started from, and the failed try's gradients are
dropped. The cut stays for the rest of the run. Below ``floor`` clips per chunk it gives up with
:class:`OutOfMemoryFloorError`, one line.

The built-in model runs a step's micro-batches in one forward (``accumulate.step_backward``); out of memory
there, the first retry recomputes its layers in the backward (activation checkpointing), the next is GradCache
over the micro-batches as built, and only then are they cut. Each retry gives the same gradients.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from vlp_sweep.errors import UserError
from vlp_sweep.train.accumulate import rng_state, set_rng_state
from vlp_sweep.train.inputs.packing import Batch, batch_len, select_clips

Losses = dict[str, Tensor]  # what a step returns: its loss (and e.g. its plain InfoNCE), detached
StepFn = Callable[[Sequence[Batch]], Losses]  # the normal step: forward + backward over the micro-batches
CachedFn = Callable[[Sequence[Batch], float], Losses]  # GradCache over chunks, the losses scaled by a factor

log = logging.getLogger(__name__)


class OutOfMemoryFloorError(UserError):
    """Out of memory even at the smallest micro-batch the space allows (``health.min_micro_batch``): one
    line, the settings ask for more memory than the device has."""


def split_batch(batch: Batch, parts: int) -> list[Batch]:
    """``batch`` cut into ``parts`` consecutive chunks of clips (sizes differ by at most 1, as
    ``torch.tensor_split``)."""
    n = batch_len(batch)
    sizes = [n // parts + (i < n % parts) for i in range(parts)]
    bounds = [sum(sizes[:i]) for i in range(parts + 1)]
    return [select_clips(batch, a, b) for a, b in zip(bounds[:-1], bounds[1:])]


class OomRescue:
    """Runs training steps, shrinking the micro-batch each time one runs out of device memory."""

    def __init__(self, floor: int, device: torch.device) -> None:
        self.floor, self.device = floor, device
        self.split = 1  # chunks per micro-batch as built
        self.recompute = False  # the whole step with its layers recomputed (activation checkpointing)
        self.chunked = False  # the step's own way abandoned: GradCache over chunks from now on
        self.events: list[str] = []  # "epoch 2 step 5: micro-batch 128 -> 64 (CUDA out of memory. ...)"

    def micro_batch(self, built: int) -> int:
        """Clips per micro-batch really run, for micro-batches built with ``built`` clips."""
        return math.ceil(built / self.split)

    def run(self, micro_batches: Sequence[Batch], mode: str, step: StepFn, cached: CachedFn,
            zero_grad: Callable[[], None], where: str, whole: bool = False) -> Losses:
        """One step's forward and backward: ``step`` as long as nothing ran out of memory, then the chunks
        through ``cached``. ``mode`` is ``optim.accum_mode``; ``where`` names the step in messages. ``whole``:
        ``step`` runs all the micro-batches in one forward: out of memory, it is run again with its layers
        recomputed (``self.recompute``, read by ``step``), then as GradCache over the micro-batches as built,
        before any is cut."""
        start = rng_state(self.device)
        while True:
            try:
                if not self.chunked:
                    return step(micro_batches)
                return self._split_step(micro_batches, mode, cached)
            except torch.OutOfMemoryError as e:
                reason = (str(e).strip().splitlines() or ["out of memory"])[0][:200]
            # Outside the except block, so the failed try's frames and tensors are released first.
            zero_grad()
            set_rng_state(start, self.device)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if whole and not self.recompute and not self.chunked:
                self.recompute = True
                self._event(f"{where}: the whole step -> its layers recomputed in the backward ({reason})")
            elif whole and len(micro_batches) > 1 and not self.chunked:
                self._chunk(batch_len(micro_batches[0]), reason, where)
            else:
                self._halve(batch_len(micro_batches[0]), reason, where)

    def _split_step(self, micro_batches: Sequence[Batch], mode: str, cached: CachedFn) -> Losses:
        chunks = [split_batch(b, self.split) for b in micro_batches]
        if mode == "cached":
            return cached([c for cs in chunks for c in cs], 1.0)
        # naive: each micro-batch sees only its own negatives, its losses divided by their number
        outs = [cached(cs, 1.0 / len(chunks)) for cs in chunks]
        return {k: torch.stack([o[k] for o in outs]).sum() for k in outs[0]}

    def _chunk(self, built: int, reason: str, where: str) -> None:
        self.chunked = True
        self._event(f"{where}: the whole step at once -> GradCache over micro-batches of {built} ({reason})")

    def _event(self, event: str) -> None:
        self.events.append(event)
        log.warning("out of memory: %s", event)

    def _halve(self, built: int, reason: str, where: str) -> None:
        now, after = self.micro_batch(built), math.ceil(built / (self.split * 2))
        if after < self.floor or now == after:
            raise OutOfMemoryFloorError(
                f"out of memory at micro-batch {now} ({where}: {reason}); halving it would go below "
                f"health.min_micro_batch {self.floor}: lower optim.batch_size or use a larger device")
        self.split *= 2
        self.chunked = True
        self._event(f"{where}: micro-batch {now} -> {after}, cached accumulation x{self.split} ({reason})")

"""Optimizer steps and the learning-rate schedule (option B: linear warmup, then constant or cosine decay
to zero). No torch here: the search space's schedule checks count steps with the same functions."""

from __future__ import annotations

import math

from vlp_sweep.config import TrainConfig
from vlp_sweep.errors import UserError


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based) of ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if kind == "cosine":
        done = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))
    return 1.0


def micro_clips(n: int, batch_size: int, grad_accum: int, world: int = 1) -> int:
    """Clips per micro-batch per process for ``n`` training clips (fewer than ``batch_size`` only for a tiny
    split); a split too small for two clips per micro-batch is a :class:`UserError`."""
    micro = min(batch_size, n // (grad_accum * world))
    if micro < 2:
        raise UserError(f"training split has {n} clips: too few for optim.grad_accum={grad_accum}"
                        f"{f' on {world} processes' if world > 1 else ''}")
    return micro


def optimizer_steps(n: int, batch_size: int, grad_accum: int, world: int = 1) -> int:
    """Optimizer steps in one epoch over ``n`` training clips (drop_last)."""
    return max(1, n // (micro_clips(n, batch_size, grad_accum, world) * grad_accum * world))


def micro_batch_size(n: int, cfg: TrainConfig, world: int = 1) -> int:
    """:func:`micro_clips` of a config."""
    return micro_clips(n, cfg.optim.batch_size, cfg.optim.grad_accum, world)


def steps_per_epoch(n: int, cfg: TrainConfig, world: int = 1) -> int:
    """:func:`optimizer_steps` of a config."""
    return optimizer_steps(n, cfg.optim.batch_size, cfg.optim.grad_accum, world)

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


def micro_batch_size(n: int, cfg: TrainConfig, world: int = 1) -> int:
    """Clips per micro-batch per process (fewer than optim.batch_size only for a tiny split)."""
    micro = min(cfg.optim.batch_size, n // (cfg.optim.grad_accum * world))
    if micro < 2:
        raise UserError(f"training split has {n} clips: too few for optim.grad_accum={cfg.optim.grad_accum}"
                        f"{f' on {world} processes' if world > 1 else ''}")
    return micro


def steps_per_epoch(n: int, cfg: TrainConfig, world: int = 1) -> int:
    """Optimizer steps in one epoch over ``n`` training clips (drop_last)."""
    return max(1, n // (micro_batch_size(n, cfg, world) * cfg.optim.grad_accum * world))

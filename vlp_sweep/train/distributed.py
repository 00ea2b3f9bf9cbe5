"""Data-parallel training across processes: negatives span every process's micro-batch.

Each process embeds its shard of the global batch; embeddings are all-gathered (the local slice
keeps its autograd graph), every process computes the same loss over the global batch, and the
parameter gradients are summed across processes. The sum is the single-process gradient over the
global batch: each process contributes exactly the part that flows through its own embeddings. The
logit scale enters the loss directly on every process, so its summed gradient is divided by the
world size. ``torch.distributed`` is touched only when the world size is above 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import Tensor, nn

T = TypeVar("T", Tensor, np.ndarray)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1

    @classmethod
    def current(cls) -> DistContext:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()


def all_gather_with_grad(x: Tensor, ctx: DistContext) -> Tensor:
    """``[B, ...]`` on each process -> ``[world * B, ...]`` in rank order; gradient flows to the local part."""
    import torch.distributed as dist

    parts = [torch.empty_like(x) for _ in range(ctx.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[ctx.rank] = x
    return torch.cat(parts)


class GatheredLoss(nn.Module):
    """Wraps a contrastive loss so that it sees the global batch (open_clip's ``gather_with_grad``)."""

    def __init__(self, loss: nn.Module, ctx: DistContext):
        super().__init__()
        self.loss, self.ctx = loss, ctx

    def forward(self, video: Tensor, text: Tensor, logit_scale: Tensor,
                text_ids: Tensor | None = None) -> dict[str, Tensor]:
        if self.ctx.world_size == 1:
            return self.loss(video, text, logit_scale, text_ids)
        ids = None if text_ids is None else all_gather_with_grad(text_ids, self.ctx)
        return self.loss(all_gather_with_grad(video, self.ctx), all_gather_with_grad(text, self.ctx),
                         logit_scale, ids)


def sum_gradients(model: nn.Module, ctx: DistContext) -> None:
    """All-reduce (sum) every gradient in one flat buffer; then undo the logit scale's world-fold count."""
    if ctx.world_size == 1:
        return
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    scale = getattr(model, "logit_scale", None)
    if scale is not None and scale.grad is not None:
        scale.grad /= ctx.world_size


def shard(indices: T, ctx: DistContext) -> T:
    """This process's contiguous share of a global micro-batch of indices (a tensor or a numpy array; sizes
    divisible by world)."""
    n = len(indices) // ctx.world_size
    return indices[ctx.rank * n:(ctx.rank + 1) * n]

"""A Transformer encoder over packed sequences: every position-wise layer (norms, projections, feed-forward,
dropout) runs on the real frames only; attention keeps each clip to itself.

The layers are ``nn.TransformerEncoder``'s own (pre-norm, GELU), so weights, initialisation and checkpoint
keys are those of a padded encoder; only the forward differs, and equals the padded one with a key padding
mask (``tests/train/test_varlen.py`` checks values and gradients against ``nn.TransformerEncoder``). One
difference by design: no dropout on the attention weights (variable-length kernels have none); dropout acts
on the input, the attention output and the feed-forward, as in the padded layer.

Attention backends (``ATTENTION``):

- ``varlen``: PyTorch's variable-length flash attention (``torch.nn.attention.varlen``) on the packed
  frames: no padding anywhere. CUDA, bf16/fp16 only.
- ``padded``: scaled-dot-product attention over the clips padded to the batch's longest (only attention
  sees padding); any device and dtype.

``auto`` takes ``varlen`` where it runs and ``padded`` elsewhere; asking for ``varlen`` where it cannot run
falls back to ``padded`` with one log line. Both give the same values to float tolerance, and the same
dropout draws (dropout acts on the packed tensors in both), so a seed trains the same model either way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vlp_sweep.train.inputs.packing import Seqs

ATTENTION = ("auto", "varlen", "padded")
Attend = Callable[[Tensor, Tensor, Tensor, Seqs], Tensor]  # q, k, v [N, H, dh] -> [N, H, dh]

log = logging.getLogger(__name__)


def _varlen_fn() -> Callable[..., Any] | None:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:  # PyTorch before 2.9
        return None
    return varlen_attn


def varlen_supported(device: torch.device, dtype: torch.dtype) -> str | None:
    """None when the variable-length kernel can run here, else why not (one phrase)."""
    if device.type != "cuda":
        return f"no variable-length attention kernel on {device.type}"
    if _varlen_fn() is None:
        return f"PyTorch {torch.__version__} has no torch.nn.attention.varlen"
    if dtype not in (torch.bfloat16, torch.float16):
        return "the variable-length kernel needs bf16 or fp16 (run.precision fp32)"
    major, _ = torch.cuda.get_device_capability(device)
    if major < 8:
        return f"flash attention needs compute capability 8.0 or later (this GPU: {major}.x)"
    return _probe(str(device), dtype)


@functools.cache
def _probe(device: str, dtype: torch.dtype) -> str | None:
    """Run the kernel once, forward and backward, on two tiny sequences: an API or build that differs from
    what this code expects becomes a fallback with its reason, not a failed trial."""
    fn = _varlen_fn()
    assert fn is not None
    try:
        q = torch.randn(5, 2, 64, device=device, dtype=dtype, requires_grad=True)
        cu = torch.tensor([0, 2, 5], device=device, dtype=torch.int32)
        fn(q, q, q, cu, cu, 3, 3).float().sum().backward()
    except Exception as e:  # any failure of the kernel here means: do not use it
        return f"the variable-length kernel failed a test call ({type(e).__name__}: {str(e)[:80]})"
    return None


def choose_attention(asked: str, device: torch.device, dtype: torch.dtype) -> str:
    """``run.attention`` -> the backend that runs; a fallback from an explicit ``varlen`` is logged."""
    if asked not in ATTENTION:
        raise ValueError(f"attention must be one of {ATTENTION}, got {asked!r}")
    if asked == "padded":
        return "padded"
    why = varlen_supported(device, dtype)
    if why is None:
        return "varlen"
    if asked == "varlen":
        log.warning("run.attention=varlen: %s; falling back to padded attention (same results, slower)", why)
    return "padded"


def varlen_attend(q: Tensor, k: Tensor, v: Tensor, seqs: Seqs, static: bool = False) -> Tensor:
    """Flash attention over the packed sequences. ``static``: the length bound instead of the batch's true
    maximum (one compiled graph for every batch; the kernel skips the empty blocks)."""
    fn = _varlen_fn()
    assert fn is not None
    longest = seqs.bound if static else seqs.max_len
    out: Tensor = fn(q, k, v, seqs.cu, seqs.cu, longest, longest)
    return out


def padded_attend(q: Tensor, k: Tensor, v: Tensor, seqs: Seqs) -> Tensor:
    """Attention with each sequence padded to the batch's longest and the padding masked as keys."""
    n, h, dh = q.shape
    b, t = len(seqs), seqs.max_len
    where = seqs.pad_index()

    def pad(x: Tensor) -> Tensor:
        out = x.new_zeros(b * t, h, dh).index_copy(0, where, x)
        return out.view(b, t, h, dh).transpose(1, 2)  # [B, H, T, dh]

    keys = torch.arange(t, device=q.device)[None] < seqs.lengths[:, None]  # [B, T] real keys
    out = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=keys[:, None, None, :])
    return out.transpose(1, 2).reshape(b * t, h, dh).index_select(0, where)


def layer_forward(layer: nn.TransformerEncoderLayer, x: Tensor, seqs: Seqs, attend: Attend) -> Tensor:
    """One pre-norm encoder layer on packed ``x [N, d]``, with the layer's own weights."""
    attn = layer.self_attn
    n, d = x.shape
    heads = attn.num_heads
    qkv = F.linear(layer.norm1(x), attn.in_proj_weight, attn.in_proj_bias).view(n, 3, heads, d // heads)
    q, k, v = qkv.unbind(1)
    a = attend(q, k, v, seqs).reshape(n, d)
    x = x + layer.dropout1(attn.out_proj(a))
    h = layer.linear2(layer.dropout(layer.activation(layer.linear1(layer.norm2(x)))))
    return x + layer.dropout2(h)


def encode(enc: nn.TransformerEncoder, x: Tensor, seqs: Seqs, attend: Attend, recompute: bool = False) -> Tensor:
    """All layers of ``enc`` over packed ``x``. ``recompute``: keep only each layer's input for the backward
    and run the layer again there (activation checkpointing, with its dropout draws replayed): the memory of
    one layer's activations instead of all of them, for one more forward."""
    for layer in enc.layers:
        if recompute and torch.is_grad_enabled():
            x = checkpoint(layer_forward, layer, x, seqs, attend, use_reentrant=False)  # type: ignore[assignment]
        else:
            x = layer_forward(layer, x, seqs, attend)
    return x


def segment_mean(x: Tensor, seqs: Seqs) -> Tensor:
    """``[B, d]``: the mean of each sequence's entries of ``x [N, d]``. ``unsafe``: skip the check that the
    lengths add up to N, which reads them back from the device (they do, by construction)."""
    return torch.segment_reduce(x, "mean", lengths=seqs.lengths, axis=0, unsafe=True)

"""Symmetric contrastive (CLIP-style) loss with duplicate-caption masking and hard-negative variants.

Conventions used throughout: ``B`` clips per batch, ``E`` embedding size. ``logits[i, j]`` scores
video ``i`` against text ``j``; the positive of row ``i`` is column ``i``. Each direction
(video->text on the rows, text->video on the columns) is handled by the same row-wise functions,
applied to ``logits`` and to ``logits.T``.

Modes (``LossConfig.hard_negatives``):

- ``none``: InfoNCE.
- ``hcl``: hard-negative reweighting with debiasing (Robinson et al., 2021), in both directions.
- ``vsepp``: InfoNCE plus a VSE++ max-violation hinge on the raw cosine similarities.
- ``topk``: InfoNCE where the k hardest negatives of each row carry ``topk_weight`` times their
  softmax mass.

A "valid negative" of row ``i`` is any column ``j != i`` whose text differs from text ``i``
(when ``dedup_texts`` is on and ``text_ids`` are given; otherwise every ``j != i``). Rows without
valid negatives contribute a loss of 0 (their positive is the whole softmax).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlp_sweep.config import LossConfig

# A row-wise loss: (logits [B, B], valid negatives [B, B]) -> per-row loss [B].
_RowLoss = Callable[[Tensor, Tensor], Tensor]


class ContrastiveLoss(nn.Module):
    """The trainer's loss. Holds no parameters: the learnable logit scale belongs to the model."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, video: Tensor, text: Tensor, logit_scale: Tensor,
                text_ids: Tensor | None = None) -> dict[str, Tensor]:
        """Loss of one batch of paired, L2-normalised embeddings.

        Args:
            video: ``[B, E]`` video embeddings; row ``i`` pairs with ``text[i]``.
            text: ``[B, E]`` text embeddings.
            logit_scale: 0-d tensor, log of the logit scale (learnable, owned by the model).
            text_ids: ``[B]`` long caption ids; equal ids mean identical captions.

        Returns:
            ``loss`` (what to backprop), ``infonce`` (plain symmetric InfoNCE, reported in every
            mode so runs stay comparable; detached unless it is part of ``loss``), ``hinge``
            (the VSE++ term, 0 in other modes) and ``scale`` (``exp(logit_scale)``).
        """
        # Autocast would turn the matmul into bf16/fp16; logits up to 100 need float32.
        with torch.autocast(device_type=video.device.type, enabled=False):
            return self._forward_fp32(video.float(), text.float(), logit_scale.float(), text_ids)

    def _forward_fp32(self, video: Tensor, text: Tensor, logit_scale: Tensor,
                      text_ids: Tensor | None) -> dict[str, Tensor]:
        cfg = self.cfg
        # No clamp here: a clamp passes no gradient once the cap is reached (exp(log 100) is 100.0000076
        # in float32), so a scale started at the cap could never move. The trainer clamps the parameter
        # into [0, log(max_logit_scale)] after each optimizer step instead (open_clip's way).
        scale = logit_scale.exp()
        cos = video @ text.T  # [B, B] raw cosine similarities
        logits = scale * cos
        neg = _valid_negatives(len(cos), text_ids if cfg.dedup_texts else None, cos.device)  # [B, B] bool
        zero = torch.zeros((), device=cos.device)
        if cfg.hard_negatives in ("none", "vsepp"):
            infonce = _symmetric(_infonce_rows, logits, neg)
            if cfg.hard_negatives == "none":
                return {"loss": infonce, "infonce": infonce, "hinge": zero, "scale": scale}
            # Summed over the two directions (not averaged), each averaged over queries.
            m = cfg.vsepp_margin
            hinge = _vsepp_rows(cos, neg, m).mean() + _vsepp_rows(cos.T, neg.T, m).mean()
            loss = infonce + cfg.vsepp_weight * hinge
            return {"loss": loss, "infonce": infonce, "hinge": hinge, "scale": scale}
        loss = _symmetric(self._reweighted_rows(scale), logits, neg)
        with torch.no_grad():  # reported only: no graph for it
            infonce = _symmetric(_infonce_rows, logits, neg)
        return {"loss": loss, "infonce": infonce, "hinge": zero, "scale": scale}

    def _reweighted_rows(self, scale: Tensor) -> _RowLoss:
        """The row loss of the modes that replace InfoNCE (hcl, topk)."""
        cfg = self.cfg
        if cfg.hard_negatives == "hcl":
            return lambda logits, neg: _hcl_rows(logits, neg, scale, cfg.hcl_beta, cfg.hcl_tau_plus)
        if cfg.hard_negatives == "topk":
            return lambda logits, neg: _topk_rows(logits, neg, cfg.topk_k, cfg.topk_weight)
        # The config validates choices; this guards direct construction.
        raise ValueError(f"hard_negatives must be none, hcl, vsepp or topk; got {cfg.hard_negatives!r}")


def _valid_negatives(b: int, text_ids: Tensor | None, device: torch.device) -> Tensor:
    """``[B, B]`` bool: ``j`` is a negative of ``i``. Symmetric, so it serves both directions."""
    off_diag = ~torch.eye(b, dtype=torch.bool, device=device)
    if text_ids is None:
        return off_diag
    ids = text_ids.to(device)
    return off_diag & (ids[:, None] != ids[None, :])


def _symmetric(row_loss: _RowLoss, logits: Tensor, neg: Tensor) -> Tensor:
    """Mean of the video->text (rows) and text->video (columns) losses, each averaged over queries."""
    return 0.5 * (row_loss(logits, neg).mean() + row_loss(logits.T, neg.T).mean())


def _infonce_rows(logits: Tensor, neg: Tensor) -> Tensor:
    """``[B]`` cross-entropy per row with non-negatives (other than the positive) left out of the softmax."""
    keep = neg | torch.eye(len(logits), dtype=torch.bool, device=logits.device)
    # The diagonal is always kept, so no row is all -inf and logsumexp stays finite.
    return torch.logsumexp(logits.masked_fill(~keep, -math.inf), dim=1) - logits.diagonal()


def _topk_rows(logits: Tensor, neg: Tensor, k: int, weight: float) -> Tensor:
    """InfoNCE with the ``k`` highest-scoring valid negatives of each row weighted by ``weight``.

    Multiplying a term's softmax mass by ``weight`` is adding ``log(weight)`` to its logit. Which
    negatives are hardest is a selection, not a function to differentiate, so it uses no gradient.
    """
    k = min(k, len(logits) - 1)
    if k <= 0 or weight == 1.0:
        return _infonce_rows(logits, neg)
    with torch.no_grad():
        cand = logits.masked_fill(~neg, -math.inf)  # [B, B], only valid negatives finite
        top_val, top_idx = cand.topk(k, dim=1)  # [B, k]
        # Rows with fewer than k valid negatives get -inf picks; drop those (k = min(k, #valid)).
        chosen = torch.zeros_like(neg).scatter_(1, top_idx, torch.isfinite(top_val))
    boost = chosen.to(logits.dtype) * math.log(weight)
    return _infonce_rows(logits + boost, neg)


def _hcl_rows(logits: Tensor, neg: Tensor, scale: Tensor, beta: float, tau_plus: float) -> Tensor:
    """``[B]`` HCL loss per row, evaluated in log space.

    Per row, with ``l_j`` the logits of the ``N`` valid negatives and ``p = l_ii``:
    ``reweighted = N * sum(exp((1+beta) l_j)) / sum(exp(beta l_j))`` (importance weights
    ``exp(beta l_j)`` on the negative terms ``exp(l_j)``), ``Ng = max((reweighted - tau_plus N
    e^p) / (1 - tau_plus), N e^{-scale})`` and ``loss = log(e^p + Ng) - p``. Exponentials of
    logits near 100 overflow float32, so each term is kept as a logarithm and shifted by the
    row's largest one before exponentiating.
    """
    n = neg.sum(1)  # [B] number of valid negatives
    has_neg = n > 0
    # Rows with no negatives: treat every entry as one so that all intermediates stay finite
    # (a NaN in the unused branch of torch.where would still poison the gradient); masked out below.
    mask = neg | ~has_neg[:, None]
    log_n = n.clamp(min=1).to(logits.dtype).log()  # [B]
    pos = logits.diagonal()  # [B]
    log_rew = (log_n + _masked_lse((1 + beta) * logits, mask) - _masked_lse(beta * logits, mask))
    log_debias = math.log(tau_plus) + log_n + pos if tau_plus > 0 else torch.full_like(pos, -math.inf)
    log_floor = log_n - scale  # the paper's N * e^{-1/t}
    shift = torch.stack([pos, log_rew, log_debias, log_floor]).amax(0).detach()  # [B], cancels exactly
    ng = ((log_rew - shift).exp() - (log_debias - shift).exp()) / (1 - tau_plus)
    ng = torch.maximum(ng, (log_floor - shift).exp())
    loss = shift + torch.log((pos - shift).exp() + ng) - pos
    return torch.where(has_neg, loss, torch.zeros_like(loss))


def _masked_lse(x: Tensor, mask: Tensor) -> Tensor:
    """``[B]`` log-sum-exp of each row over the entries where ``mask`` holds (every row has one)."""
    return torch.logsumexp(x.masked_fill(~mask, -math.inf), dim=1)


def _vsepp_rows(cos: Tensor, neg: Tensor, margin: float) -> Tensor:
    """``[B]`` max-violation hinge per row on cosine similarities; 0 for rows without negatives."""
    has_neg = neg.any(1)
    # Rows without negatives get a finite stand-in (their own positive) and are zeroed below.
    hardest = cos.masked_fill(~neg, -math.inf).amax(1)
    hardest = torch.where(has_neg, hardest, cos.diagonal().detach())
    hinge = F.relu(margin - cos.diagonal() + hardest)
    return torch.where(has_neg, hinge, torch.zeros_like(hinge))

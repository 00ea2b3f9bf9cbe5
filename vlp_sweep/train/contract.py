"""The trainer's side of the model contract: any factory's module wrapped the same way.

:class:`ContrastiveModel` holds the module the factory built (``net``) and adds what the trainer
keeps for every model: the learnable logit scale (unless the module has its own ``logit_scale``
parameter), L2 normalisation of the embeddings, and a check of what the module returns, so that a
wrong shape or dtype is one line at the first batch rather than a broadcasting error in the loss.
The contract itself is in the README ("Your own model").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlp_sweep.config import TrainConfig
from vlp_sweep.errors import UserError
from vlp_sweep.train.factory import BUILTIN_FACTORY, BUILTIN_OPTIONS, ModelDims, call_factory, module_root
from vlp_sweep.train.inputs.packing import Batch, PackedBatch, batch_len, batch_text_ids


def factory_options(cfg: TrainConfig) -> dict[str, Any]:
    """What the factory is called with besides the dims: the built-in model's typed keys, or a factory's
    own ``model.options``."""
    if cfg.model.factory == BUILTIN_FACTORY:
        return {k: getattr(cfg.model, k) for k in BUILTIN_OPTIONS}
    return dict(cfg.model.options)


def build_model(cfg: TrainConfig, dims: ModelDims) -> ContrastiveModel:
    """The one way the trainer, ``eval``, ``promote`` and resume get a model: factory, then wrapper."""
    net = call_factory(cfg.model.factory, dims, factory_options(cfg))
    return ContrastiveModel(net, dims, cfg.model.factory, cfg.logit_scale_init, cfg.loss.learn_temperature)


class ContrastiveModel(nn.Module):
    """``forward(batch) -> {"video": [B, E], "text": [B, E], "logit_scale": scalar}``, embeddings float32 and
    unit length. A module of your own gets the padded batch dict; one that sets ``packed_input = True`` (the
    built-in model) gets :class:`~vlp_sweep.train.inputs.packing.PackedBatch` and may offer ``set_attention``, a
    ``recompute`` flag and ``compile_towers()`` (what ``run.compile`` calls instead of ``nn.Module.compile``)."""

    def __init__(self, net: nn.Module, dims: ModelDims, factory: str, logit_scale_init: float,
                 learn_temperature: bool) -> None:
        super().__init__()
        self.net, self.dims, self.factory = net, dims, factory
        # Where the factory's module was imported from: checkpoints record it, so that eval and promote on
        # this machine find the module again from any folder (evaluate.model_from_checkpoint).
        self.source = module_root(factory)
        if not isinstance(getattr(net, "logit_scale", None), nn.Parameter):
            # Registered under the property's name: the state_dict key stays "logit_scale".
            self.register_parameter("logit_scale", nn.Parameter(torch.tensor(float(logit_scale_init)),
                                                                requires_grad=learn_temperature))

    @property
    def logit_scale(self) -> nn.Parameter:
        """log of the logit scale: the trainer's, or the module's own ``logit_scale`` parameter."""
        own = self._parameters.get("logit_scale")
        return own if own is not None else self.net.logit_scale  # type: ignore[return-value]

    @property
    def packed_input(self) -> bool:
        """Whether the module takes packed batches (else the padded dict)."""
        return bool(getattr(self.net, "packed_input", False))

    def set_recompute(self, on: bool) -> None:
        """Activation checkpointing inside the module, where it offers it (a step over several micro-batches'
        worth of clips at once); without it the trainer accumulates micro-batch by micro-batch."""
        net: Any = self.net
        if hasattr(net, "recompute"):
            net.recompute = on

    def compile_model(self) -> None:
        """``torch.compile`` the module. Its random numbers come from PyTorch's own generator, as in eager
        mode (inductor's ``fallback_random``): compiled or not, a seed draws the same dropout masks, so
        compiling changes speed, not results (to float rounding)."""
        import torch._inductor.config as inductor

        inductor.fallback_random = True
        towers = getattr(self.net, "compile_towers", None)
        if towers is not None:
            towers()
        else:
            self.net.compile(dynamic=True)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        device = batch_text_ids(batch).device
        if not torch.is_autocast_enabled(device.type):
            # GPU data is stored in float16; without autocast a float32 module needs float32 inputs.
            batch = batch.float() if isinstance(batch, PackedBatch) else {
                k: v.float() if v.dtype == torch.float16 else v for k, v in batch.items()}
        out = self.net(batch)
        n = batch_len(batch)
        video, text = (self._checked(out, key, n) for key in ("video", "text"))
        return {"video": F.normalize(video.float(), dim=-1), "text": F.normalize(text.float(), dim=-1),
                "logit_scale": self.logit_scale}

    def _checked(self, out: Any, key: str, n: int) -> torch.Tensor:
        """One embedding of the module's output, or one line saying what is wrong with it."""
        where = f"model.factory {self.factory!r}: the module's forward"
        if not isinstance(out, Mapping):
            raise UserError(f"{where} returned a {type(out).__name__}; expected a dict with 'video' and 'text'")
        x = out.get(key)
        if not isinstance(x, torch.Tensor):
            raise UserError(f"{where} returned no '{key}' tensor (keys: {', '.join(map(str, out)) or 'none'})")
        want = (n, self.dims.embed_dim)
        if tuple(x.shape) != want:
            raise UserError(f"{where} returned '{key}' of shape {list(x.shape)}; expected [{n}, {want[1]}] "
                            "(batch size, model.embed_dim)")
        if not x.is_floating_point():
            raise UserError(f"{where} returned '{key}' of dtype {x.dtype}; expected a floating-point tensor")
        return x


def load_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Weights into ``model``; checkpoints written before the factory (keys without ``net.``) still load."""
    if state and not any(k.startswith("net.") for k in state):
        state = {(k if k == "logit_scale" else f"net.{k}"): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"checkpoint does not fit this model ({first})") from None

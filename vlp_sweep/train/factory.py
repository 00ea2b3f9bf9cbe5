"""The trainer's side of a model factory: the input dimensions it receives (:class:`ModelDims`) and the
call that builds the module (:func:`call_factory`, which needs torch).

Naming, importing and checking a factory and its options is plain Python (``vlp_sweep/model_factory.py``,
below the config); the names the trainer uses from it are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from vlp_sweep.errors import UserError
from vlp_sweep.model_factory import (
    BUILTIN_FACTORY,
    BUILTIN_OPTIONS,
    add_import_paths,
    check_required,
    module_root,
    resolve_factory,
)

__all__ = ["BUILTIN_FACTORY", "BUILTIN_OPTIONS", "ModelDims", "add_import_paths", "call_factory", "module_root"]


@dataclass(frozen=True)
class ModelDims:
    """What a factory receives: the input dimensions of the data and the sizes the trainer fixes."""

    kpt_dim: int  # per frame: points x (coords + visibility); 0 = keypoints not used (data.use_kpts)
    siglip_dim: int  # per-frame SigLIP width; 0 = not used (data.use_siglip)
    text_feature_dim: int  # per-clip precomputed text feature width; 0 = not used (data.use_text_features)
    vocab_size: int  # token ids are < vocab_size; 0 is padding
    max_frames: int  # T of a batch (data.max_frames)
    max_text_len: int  # L of a batch (data.max_text_len)
    embed_dim: int  # width of the video and text embeddings the module returns (model.embed_dim)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], embed_dim: int) -> ModelDims:
        """From a checkpoint's ``model_args`` (older ones lack text_feature_dim/embed_dim and carry
        logit-scale fields that now live in the config)."""
        names = {f.name for f in fields(cls)}
        known = {k: int(v) for k, v in d.items() if k in names}
        known.setdefault("text_feature_dim", 0)
        known.setdefault("embed_dim", embed_dim)
        try:
            return cls(**known)
        except TypeError as e:
            raise UserError(f"checkpoint has malformed model_args ({e})") from None


def call_factory(spec: str, dims: ModelDims, options: Mapping[str, Any]) -> Any:
    """Build the module; a factory that raises, or returns no ``nn.Module``, is one line."""
    from torch import nn

    fn = resolve_factory(spec)
    check_required(spec, options)
    try:
        module = fn(dims, **options)
    except UserError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"model.factory {spec!r} raised {type(e).__name__}{f': {first}' if first else ''}") from None
    if not isinstance(module, nn.Module):
        raise UserError(f"model.factory {spec!r} returned a {type(module).__name__}, not a torch.nn.Module")
    return module

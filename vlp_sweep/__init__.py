"""vlp-sweep: sweeps for contrastive video-language pretraining (VLP) of sign language."""

from __future__ import annotations

from typing import Any

__version__ = "0.3.0"
__all__ = ["__version__", "TrainConfig", "make_config", "fit", "retrieval_metrics", "UserError"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: `import vlp_sweep` stays cheap and pulls in no torch until asked.
    if name in ("TrainConfig", "make_config"):
        from vlp_sweep import config

        return getattr(config, name)
    if name == "fit":
        from vlp_sweep.train.trainer import fit

        return fit
    if name == "retrieval_metrics":
        from vlp_sweep.train.metrics import retrieval_metrics

        return retrieval_metrics
    if name == "UserError":
        from vlp_sweep.errors import UserError

        return UserError
    raise AttributeError(name)

"""The model check of ``validate`` and ``run`` for a model factory of your own: build the module once
on the CPU with the dataset's dims and run one small batch through the trainer's wrapper, so that a
factory that raises, returns no ``nn.Module``, or returns embeddings of the wrong shape or dtype is
one line before any trial starts (a trial would find the same at its first batch), and so are embeddings
that are NaN or inf before any training. The built-in model is not checked here: its tests do that.
"""

from __future__ import annotations

from typing import Any

from vlp_sweep.config import TrainConfig, make_config
from vlp_sweep.errors import UserError
from vlp_sweep.model_factory import BUILTIN_FACTORY, is_option_key
from vlp_sweep.space.spec import SweepSpec

CLIPS = 4  # clips of the training split in the trial batch


def representative_config(spec: SweepSpec) -> TrainConfig:
    """The base config with every searched option at its first possible value (a range: its low end)."""
    drawn = {k: spec.possible_values(k)[0] for p in spec.search for k in p.sets() if is_option_key(k)}
    return make_config(spec.trial_overrides({}), drawn, {"run.device": "cpu", "run.compile": False})


def check_model(spec: SweepSpec, ds: Any) -> str | None:
    """None for the built-in model; else a summary line (parameters) or a UserError naming the factory."""
    import torch

    from vlp_sweep.train.contract import build_model
    from vlp_sweep.train.inputs.batching import load_split, model_dims
    from vlp_sweep.train.inputs.packing import make_batch
    from vlp_sweep.train.inputs.tokenizer import WordTokenizer

    cfg = representative_config(spec)
    if cfg.model.factory == BUILTIN_FACTORY:
        return None
    texts = ds.split(cfg.data.train_split)["text"].astype(str)
    tok = WordTokenizer.build(texts)
    split = load_split(ds, cfg.data.train_split, cfg.data, tok, torch.device("cpu"), torch.float32, limit=CLIPS)
    model = build_model(cfg, model_dims(ds, cfg, len(tok)))
    model.eval()
    batch = make_batch(split, torch.arange(min(CLIPS, len(split))), cfg.data)
    try:
        with torch.no_grad():
            out = model(batch)
    except UserError:
        raise
    except Exception as e:  # the module's own forward failed on a real batch
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise UserError(f"model.factory {cfg.model.factory!r}: the module's forward raised {type(e).__name__}"
                        f"{f': {first}' if first else ''} on {len(batch['tokens'])} training clips") from None
    n, b = sum(p.numel() for p in model.net.parameters()), len(batch["tokens"])
    bad = [k for k in ("video", "text") if not bool(torch.isfinite(out[k]).all())]
    if bad:  # every trial would stop at its first step: say it before any starts
        raise UserError(f"model.factory {cfg.model.factory!r}: the module's forward returned non-finite (NaN or "
                        f"inf) '{bad[0]}' embeddings for {b} training clips, before any training")
    return f"model {cfg.model.factory}: {n:,} parameters; {b} training clips -> embeddings [{b}, {cfg.model.embed_dim}]"

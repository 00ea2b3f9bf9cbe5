"""The generator's knobs: one frozen dataclass with a help text and a range per field."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from vlp_sweep.errors import UserError, did_you_mean

SPLITS = ("train", "dev", "test")
BUILTIN_SIZES = {"train": 800, "dev": 200, "test": 200}


def _p(default: Any, help: str, *, lo: float | None = None, hi: float | None = None, type: type = int) -> Any:
    """A parameter with its help text, its range and its command-line type."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "type": type})


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator; the defaults make a small corpus that trains on a CPU in minutes."""

    train: int | None = _p(None, "train clips (default 800); with --corpus a row cap, 0/unset = all", lo=0)
    dev: int | None = _p(None, "dev clips (default 200); with --corpus a row cap, 0/unset = all", lo=0)
    test: int | None = _p(None, "test clips (default 200); with --corpus a row cap, 0/unset = all", lo=0)
    signers: int = _p(12, "signers in all", lo=2)
    heldout_signers: int = _p(3, "signers seen only in dev/test (never in train)", lo=1)
    lexicon: int = _p(150, "glosses in the built-in lexicon (ignored with --corpus)", lo=2, hi=20000)
    siglip_dim: int = _p(32, "per-frame SigLIP feature size (0 = no siglip.npy)", lo=0)
    median_frames: int = _p(60, "median clip length of the built-in generator", lo=4)
    min_frames: int = _p(16, "shortest clip (built-in generator)", lo=2)
    max_frames: int = _p(400, "longest clip (built-in generator)", lo=2)
    length_spread: float = _p(0.55, "sigma of the log-normal clip length (long tail)", lo=0.0, hi=2.0,
                              type=float)
    fps: float = _p(25.0, "frames per second written to meta.json", lo=1.0, type=float)
    seed: int = _p(0, "seed: the same seed gives byte-identical files")
    corpus: str = _p("", "corpus CSV name,split,n_frames,gloss,text: real texts, glosses, lengths, splits",
                     type=str)
    noise: float = _p(1.0, "scale of the Gaussian keypoint jitter (0 = none)", lo=0.0, hi=20.0, type=float)
    variation: float = _p(1.0, "scale of the variation between two performances of a gloss", lo=0.0, hi=5.0,
                          type=float)
    signer_variation: float = _p(1.0, "scale of the differences between signers (size aside)", lo=0.0, hi=3.0,
                                 type=float)
    rotation_deg: float = _p(8.0, "signers' body rotation up to +-deg", lo=0.0, hi=45.0, type=float)
    left_handed: float = _p(0.2, "share of left-handed (mirrored) signers", lo=0.0, hi=1.0, type=float)
    missing_dominant: float = _p(0.15, "share of frames whose dominant hand is missing", lo=0.0, hi=0.95,
                                 type=float)
    missing_other: float = _p(0.4, "share of frames whose non-dominant hand is missing", lo=0.0, hi=0.95,
                              type=float)
    siglip_signal: float = _p(1.0, "scale of the gloss signal in the SigLIP features", lo=0.0, type=float)
    siglip_appearance: float = _p(0.5, "scale of the signer appearance nuisance in SigLIP features", lo=0.0,
                                  type=float)
    siglip_noise: float = _p(2.0, "std of the per-frame SigLIP noise", lo=0.0, type=float)
    zipf: float = _p(1.0, "Zipf exponent of gloss frequencies (0 = uniform)", lo=0.0, hi=4.0, type=float)
    repeat: float = _p(0.04, "share of built-in clips that reuse one of a few stock sentences (exact "
                       "duplicate texts, as in real corpora)", lo=0.0, hi=1.0, type=float)

    def __post_init__(self) -> None:
        for f in fields(self):
            v, lo, hi = getattr(self, f.name), f.metadata["lo"], f.metadata["hi"]
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if number and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                raise UserError(f"synth parameter {f.name}={v} is outside {bounds}")
        if self.heldout_signers >= self.signers:
            raise UserError(f"heldout_signers ({self.heldout_signers}) must be below signers "
                            f"({self.signers}): train needs at least one signer")
        if self.min_frames > self.max_frames:
            raise UserError(f"min_frames ({self.min_frames}) must not exceed max_frames ({self.max_frames})")

    def split_sizes(self) -> dict[str, int]:
        """Clips per split; with a corpus 0 means all of that split's rows."""
        default = {s: 0 for s in SPLITS} if self.corpus else BUILTIN_SIZES
        return {s: default[s] if getattr(self, s) is None else int(getattr(self, s)) for s in SPLITS}


def make_params(**overrides: Any) -> SynthParams:
    """:class:`SynthParams` from keyword overrides; an unknown name is a :class:`UserError` naming it."""
    names = [f.name for f in fields(SynthParams)]
    for k in overrides:
        if k not in names:
            raise UserError(f"unknown synth parameter '{k}'{did_you_mean(k, names)}")
    return SynthParams(**overrides)

"""`vlp-sweep data synth --out DIR`: write the synthetic sign-like corpus (see vlp_sweep.data.synth).

Every generator parameter becomes an option of the same name (``median_frames`` ->
``--median-frames``) with its help text, so the dataclass stays the one place that defines them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields
from typing import Any


def register(sub: Any) -> None:
    from vlp_sweep.data.synth import SynthParams

    p = sub.add_parser("synth", help="generate a synthetic sign-like corpus as a packed dataset",
                       description="Generate a synthetic sign-like corpus (pose keypoints, optional "
                                   "per-frame SigLIP-like features, sentences), deterministic by --seed.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    for f in fields(SynthParams):
        kind = f.metadata["type"]
        shown = "" if f.default in (None, "") else f" [{f.default}]"
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                       metavar="CSV" if f.name == "corpus" else kind.__name__.upper(),
                       help=f.metadata["help"] + shown)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vlp_sweep.data.packed import load_packed
    from vlp_sweep.data.synth import SynthParams, synthesize

    # Only the options given on the command line override the dataclass defaults.
    params = {f.name: getattr(args, f.name) for f in fields(SynthParams) if getattr(args, f.name) is not None}
    t0 = time.perf_counter()
    out = synthesize(args.out, overwrite=args.overwrite, **params)
    ds = load_packed(out, check_values=False)  # just written and validated: only the counts are needed
    counts = ", ".join(f"{s} {n}" for s, n in ds.manifest["split"].value_counts(sort=False).items())
    print(f"wrote {out}: {len(ds.manifest)} clips ({counts}), {len(ds.keypoints)} frames, "
          f"siglip dim {ds.siglip_dim}, in {time.perf_counter() - t0:.1f} s; "
          f"content hash {ds.meta['content_hash'][:12]}")
    return 0

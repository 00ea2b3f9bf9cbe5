"""`vlp-sweep promote RUN_DIR`: verify the best trial's checkpoint and make it the champion in DIR.

DIR (default ``checkpoints``) then holds ``vlp_best_full.pt``, ``vlp_best_encoder.pt``,
``vlp_best_encoder.safetensors`` and ``promoted.json`` (links into ``DIR/current``), and the previous
champion under ``DIR/previous``. ``vlp-sweep eval --ckpt DIR/vlp_best_full.pt`` reproduces the metrics.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("promote", help="verify the best trial's checkpoint and make it the champion")
    p.add_argument("run_dir", help="the sweep's folder (runs/NAME)")
    p.add_argument("--trial", help="promote this trial id instead of the best")
    p.add_argument("--metric", help="pick the best by this metric (default: the sweep's)")
    p.add_argument("--to", default="checkpoints", help="destination folder (default checkpoints)")
    p.add_argument("--force", action="store_true", help="replace a champion that is better on the metric")
    p.add_argument("--device", default="auto", help="device of the re-evaluation (default auto: the GPU if "
                                                    "there is one, as in training)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest allowed difference between re-evaluated and recorded metrics (default 1e-6)")
    p.add_argument("--no-wandb", action="store_true", help="do not log a W&B artifact even if the sweep uses W&B")
    p.add_argument("--search-winner", action="store_true",
                   help="install the search's best trial (selection numbers) even though the space has a "
                        "confirmation stage, e.g. one that failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vlp_sweep.output import quiet_python
    from vlp_sweep.promote import TOLERANCE, promote

    # PyTorch's and W&B's own messages go to runs/NAME/promote.log (to the terminal with --debug).
    with quiet_python(Path(args.run_dir) / "promote.log", enabled=not getattr(args, "debug", False)):
        res = promote(args.run_dir, trial=args.trial, metric=args.metric, to=args.to, force=args.force,
                      device=args.device, tolerance=TOLERANCE if args.tolerance is None else args.tolerance,
                      wandb=not args.no_wandb, progress=print, search_winner=args.search_winner)
    for line in res.lines:
        print(line)
    return 0

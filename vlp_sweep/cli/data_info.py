"""`vlp-sweep data info DIR [--json]`: what a packed dataset holds (see vlp_sweep.data.info)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("info", help="summarise a packed dataset: splits, lengths, duplicates, missing points",
                       description="Summarise a packed dataset: clips per split, clip-length percentiles "
                                   "and the share over 120/150/180 frames, duplicate texts, dims, missing "
                                   "points.")
    p.add_argument("path", metavar="DIR", help="packed dataset folder")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vlp_sweep.data.info import dataset_info, format_info

    info = dataset_info(args.path)
    print(json.dumps(info, indent=2) if args.json else format_info(info), end="\n" if args.json else "")
    return 0

"""`vlp-sweep status runs/NAME`: trials by status and the current best, from the live leaderboard."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="progress and best trials of a sweep")
    p.add_argument("run_dir", help="sweep folder, e.g. runs/quickstart")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.sweep.status import print_status

    print_status(args.run_dir)
    return 0

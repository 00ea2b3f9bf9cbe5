"""`vlp-sweep dashboard runs/NAME`: browse a sweep's Optuna study with optuna-dashboard."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("dashboard", help="serve the Optuna study of a sweep (runs/NAME/optuna.journal) in a browser")
    p.add_argument("run_dir", help="sweep folder, e.g. runs/quickstart (during the sweep or after it)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; reach it from elsewhere "
                        "with an SSH port forward)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.errors import UserError
    from vlp_sweep.sweep.dashboard import serve

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    serve(args.run_dir, args.host, args.port, announce=lambda line: print(line, flush=True))
    return 0

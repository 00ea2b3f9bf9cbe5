"""`vlp-sweep report RUN_DIR`: the leaderboard with intervals, comparisons, targets, effects and importance.

Always writes ``<out>/<NAME>/report.md`` and ``report.html`` (with the figures); ``--format`` picks what
goes to the terminal: a table (default), the Markdown, the HTML, or JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

FORMATS = ("table", "md", "html", "json")


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="report a sweep: leaderboard, intervals, comparisons, targets, plots")
    p.add_argument("run_dir", help="the sweep's folder (runs/NAME)")
    p.add_argument("--top", type=int, default=10, help="trials in the leaderboard table (default 10)")
    p.add_argument("--metric", help="rank by this metric (default: the sweep's)")
    p.add_argument("--format", choices=FORMATS, default="table", help="what to print (files are always written)")
    p.add_argument("--out", default="reports", help="reports root; the report goes to OUT/NAME (default reports)")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.errors import UserError
    from vlp_sweep.output import quiet_python
    from vlp_sweep.report.build import build_report
    from vlp_sweep.report.render import print_terminal, to_json, write_report
    from vlp_sweep.sweep.tables.results import load_sweep

    if args.resamples < 100:
        raise UserError(f"--resamples must be >= 100, got {args.resamples}")
    sweep = load_sweep(args.run_dir)
    # Optuna's, matplotlib's and pandas' own messages go to runs/NAME/report.log (shown with --debug).
    with quiet_python(Path(args.run_dir) / "report.log", enabled=not getattr(args, "debug", False)):
        rep = build_report(sweep, metric=args.metric, top=args.top, resamples=args.resamples)
    out_dir = Path(args.out) / Path(args.run_dir).resolve().name
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"report destination is a file, not a folder: {out_dir}")
    with quiet_python(Path(args.run_dir) / "report.log", enabled=not getattr(args, "debug", False)):
        written = write_report(rep, out_dir)
    if args.format == "table":
        print_terminal(rep, written)
    elif args.format == "md":
        sys.stdout.write(written["report.md"].read_text())
    elif args.format == "html":
        sys.stdout.write(written["report.html"].read_text())
    else:
        print(to_json(rep))
    return 0

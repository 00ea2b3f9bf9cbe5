"""`vlp-sweep run SPACE.yaml`: launch or resume a sweep on Ray Tune."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vlp_sweep.space.spec import SweepSpec


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="launch (or resume) a sweep from a YAML search space")
    p.add_argument("space", help="search space YAML (native or W&B sweep format)")
    p.add_argument("--name", help="sweep name, a folder under runs/ (default: the space's name)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep of this name")
    p.add_argument("--address", help="join an existing Ray cluster (host:port or 'auto'); default: local Ray")
    p.add_argument("--storage", help="Ray storage root that every node sees (shared folder or URI); default runs/")
    p.add_argument("--max-concurrent", type=int, help="trials at once (overrides the space)")
    p.add_argument("--runs-root", default="runs", help=argparse.SUPPRESS)
    p.add_argument("--dry-run", action="store_true", help="validate and show the plan, start nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vlp_sweep.errors import UserError
    from vlp_sweep.space import load_space
    from vlp_sweep.sweep.driver import SweepOptions, run_sweep

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError("--max-concurrent must be >= 1")
    spec = load_space(args.space)
    _print_warnings(spec)
    opts = SweepOptions(name=args.name, resume=args.resume, address=args.address, storage=args.storage,
                        max_concurrent=args.max_concurrent, runs_root=args.runs_root, dry_run=args.dry_run,
                        quiet=not getattr(args, "debug", False))
    outcome = run_sweep(spec, opts)
    args.exit_hard = outcome.ray_started  # read by cli.console: skip the interpreter's teardown
    run_dir = outcome.run_dir
    if args.dry_run:
        b = spec.budget()
        print(f"dry run: sweep '{run_dir.name}' would run {b['trials']} trials of at most "
              f"{b['max_epochs_per_trial']} epochs ({b['max_total_epochs']} epochs at most), "
              f"{b['max_concurrent']} at a time, into {run_dir}; nothing started")
        return 0
    from vlp_sweep.sweep.status import print_status

    if not (run_dir / "sweep.json").is_file():  # a signal while Ray was starting: nothing to show
        print(f"interrupted before sweep '{run_dir.name}' started; nothing was run", file=sys.stderr)
        return outcome.exit_code
    _refuse_all_failed(run_dir, outcome.status)
    print_status(run_dir)
    print(f"\nleaderboard: {run_dir}/leaderboard.parquet   report: vlp-sweep report {run_dir}")
    if (run_dir / "confirm.parquet").is_file():
        from vlp_sweep.sweep.tables.leaderboard import read_table

        rows = read_table(run_dir / "confirm.parquet")
        failed = int((rows["status"] != "TERMINATED").sum())
        print(f"confirmation: {len(rows)} runs ({failed} failed): {run_dir}/confirm.parquet")
    if outcome.status == "interrupted":
        print(f"interrupted: resume with  vlp-sweep run {_resume_args(args, run_dir.name)} --resume", file=sys.stderr)
    for line in outcome.failures:  # the sweep is not finished: sweep.json says failed, in the confirmation stage
        print(f"error: {line}", file=sys.stderr)
    if outcome.failures:
        print(f"the confirmation stage failed: no confirmed result; `vlp-sweep run {_resume_args(args, run_dir.name)} "
              "--resume` runs the failed runs again", file=sys.stderr)
    return outcome.exit_code


def _refuse_all_failed(run_dir: Any, status: str) -> None:
    """A search whose every trial errored (bad data, a broken factory) ends with one line naming the error."""
    from vlp_sweep.errors import UserError
    from vlp_sweep.sweep.tables.results import all_failed, open_sweep

    if status == "finished" and (line := all_failed(open_sweep(run_dir)[1])):
        raise UserError(line)


def _resume_args(args: argparse.Namespace, name: str) -> str:
    """The command line that continues this sweep (same space, name, storage and cluster)."""
    import shlex

    parts = [args.space, "--name", name]
    for flag, value in (("--address", args.address), ("--storage", args.storage),
                        ("--max-concurrent", args.max_concurrent),
                        ("--runs-root", None if args.runs_root == "runs" else args.runs_root)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _print_warnings(spec: SweepSpec) -> None:
    """What ``validate`` warns about (the space, and the lr schedule against ASHA's rungs), before launching."""
    from vlp_sweep.space import check_data

    for line in (*spec.warnings, *check_data(spec).warnings):
        print(f"warning: {line}", file=sys.stderr)

"""The `vlp-sweep` command: this file only wires one module per noun and turns user errors into exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from vlp_sweep import __version__
from vlp_sweep.errors import UserError

# noun -> module under vlp_sweep.cli; each module has register(subparsers) that sets `func`.
COMMANDS = ("data", "train", "eval", "validate", "run", "status", "report", "promote", "dashboard")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vlp-sweep", description="Sweeps for contrastive video-language pretraining of sign language.")
    p.add_argument("--version", action="version", version=f"vlp-sweep {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"vlp_sweep.cli.{name}_cmd").register(sub)
    return p


def console() -> None:
    """The `vlp-sweep` console script. A command that ran Ray in this process sets ``exit_hard`` on its
    arguments: the script then skips interpreter teardown, where Ray's background threads can abort
    the process after the work is done and written."""
    code, exit_hard = _dispatch(sys.argv[1:])
    if exit_hard:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command in-process; returns the exit code (what tests call)."""
    return _dispatch(list(sys.argv[1:] if argv is None else argv))[0]


def _dispatch(argv: list[str]) -> tuple[int, bool]:
    """(exit code, whether the process should exit without interpreter teardown)."""
    debug = "--debug" in argv
    args = None
    from vlp_sweep.model_factory import add_import_paths

    add_import_paths([os.getcwd()])  # a model factory of your own imports from where you run the command
    try:
        args = build_parser().parse_args(argv)
        if not getattr(args, "func", None):
            build_parser().print_help()
            return 2, False
        return int(args.func(args) or 0), bool(getattr(args, "exit_hard", False))
    except UserError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2, bool(getattr(args, "exit_hard", False))
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0, False
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130, False

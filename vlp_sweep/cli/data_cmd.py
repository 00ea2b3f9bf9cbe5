"""`vlp-sweep data synth|import|info`: wires the three data verbs (one module each)."""

from __future__ import annotations

import importlib
from typing import Any

VERBS = ("synth", "import", "info")


def register(sub: Any) -> None:
    p = sub.add_parser("data", help="make, import and inspect packed datasets")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", parser_class=type(p))
    for verb in VERBS:
        importlib.import_module(f"vlp_sweep.cli.data_{verb}").register(verbs)

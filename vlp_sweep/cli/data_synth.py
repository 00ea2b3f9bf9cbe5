"""`vlp-sweep data synth` (not wired yet)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("synth", help="(not yet available)")

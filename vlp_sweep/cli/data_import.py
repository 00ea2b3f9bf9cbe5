"""`vlp-sweep data import` (not wired yet)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("import", help="(not yet available)")

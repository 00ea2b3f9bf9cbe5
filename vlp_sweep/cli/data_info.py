"""`vlp-sweep data info` (not wired yet)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    sub.add_parser("info", help="(not yet available)")

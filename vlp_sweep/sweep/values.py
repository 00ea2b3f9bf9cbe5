"""Small helpers of the distribution classes: how a value prints and compares, and W&B's rounding."""

from __future__ import annotations

import math
from typing import Any

U_LOW, U_HIGH = 1e-6, 1.0 - 1e-6
Pairs = tuple[tuple[str, Any], ...]


def fmt(v: Any) -> str:
    """A value as a space shows it: ``0.001``, ``true``, ``null``, ``hcl``."""
    if isinstance(v, float):
        return f"{v:g}"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps bools apart from numbers (``True == 1`` in Python, not in a space)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def contains(values: tuple[Any, ...], x: Any) -> bool:
    return any(same_value(v, x) for v in values)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def multiple(v: float, step: float) -> bool:
    return abs(v / step - round(v / step)) <= 1e-9 * max(1.0, abs(v / step))


def rounded(x: float, step: float | int | None) -> Any:
    """W&B's quantisation: ``round(x / step) * step``, an int when ``step`` is one."""
    if step is None:
        return float(x)
    k = round(x / step)
    return int(k * step) if isinstance(step, int) else float(f"{k * step:.12g}")

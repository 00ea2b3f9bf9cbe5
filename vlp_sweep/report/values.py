"""Small helpers on config values and metrics shared by the analyses and the renderers."""

from __future__ import annotations

import math
from typing import Any

from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.selection import finite_float


def same(a: Any, b: Any) -> bool:
    """Config values equal as the trainer would see them: 64 == 64.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    fa, fb = finite_float(a), finite_float(b)
    if fa is not None and fb is not None and not isinstance(a, str) and not isinstance(b, str):
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def value_label(v: Any) -> str:
    """A config value as the report prints it (``true``, ``null``, ``0.001``)."""
    if isinstance(v, bool) or v is None:
        return str(v).lower() if v is not None else "null"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def metric_range(metric: str) -> tuple[float, float]:
    """The values a metric can take: R@k in percent, rsum the sum of six of them, ranks from 1."""
    if metric == "rsum":
        return 0.0, 600.0
    if metric.endswith(("MedR", "MeanR")):
        return 1.0, math.inf
    if metric in RETRIEVAL_METRICS:
        return 0.0, 100.0
    return -math.inf, math.inf

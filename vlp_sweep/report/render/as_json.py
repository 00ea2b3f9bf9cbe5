"""The report as plain JSON: every field of :class:`~vlp_sweep.report.types.Report`, NaN as null."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from vlp_sweep.report.types import Report


def _plain(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted(_plain(v) for v in x)
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _plain(x.item())
    return x


def to_dict(rep: Report) -> dict[str, Any]:
    d = asdict(rep)
    for c, src in zip(d["comparisons"], rep.comparisons):  # selection numbers: a p-value, never a verdict
        c["p"] = src.result.p if src.result else None
    return dict(_plain(d))


def to_json(rep: Report) -> str:
    return json.dumps(to_dict(rep), indent=1)

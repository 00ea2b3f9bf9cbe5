"""What is in a packed dataset: clips, lengths against MAX_FRAMES, duplicate texts, missing points.

``dataset_info`` returns plain data (JSON-ready); ``format_info`` renders it as a table. The length
thresholds are the plan's MAX_FRAMES candidates, so the table says how much each would crop.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.data.packed import PackedDataset, load_packed

__all__ = ["dataset_info", "format_info", "PERCENTILES", "THRESHOLDS"]

PERCENTILES = (5, 25, 50, 75, 95)
THRESHOLDS = (120, 150, 180)  # option A's MAX_FRAMES candidates
SPLIT_ORDER = ("train", "dev", "test")


def dataset_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Summary of the packed dataset at ``path``; bad input raises :class:`UserError` (via load_packed)."""
    ds = load_packed(path)
    m = ds.manifest
    splits = sorted(m["split"].astype(str).unique(), key=_split_key)
    return {
        "path": str(ds.root),
        "n_clips": len(m),
        "n_frames": int(len(ds.keypoints)),
        "dims": {"points": ds.n_points, "coords": ds.dims, "siglip": ds.siglip_dim},
        "layout": (ds.meta.get("layout") or {}).get("name"),
        "fps": ds.meta.get("fps"),
        "content_hash": ds.meta.get("content_hash"),
        "splits": {s: _rows_info(m[m["split"] == s]) for s in splits},
        "all": _rows_info(m),
        "missing": missing_rates(ds),
    }


def _split_key(name: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)


def _rows_info(rows: pd.DataFrame) -> dict[str, Any]:
    n = rows["n_frames"].to_numpy(np.int64)
    text = rows["text"].astype(str)
    out: dict[str, Any] = {
        "clips": len(rows),
        "frames": int(n.sum()),
        "length": length_stats(n),
        "over": {str(t): float((n > t).mean()) for t in THRESHOLDS},
        # Clips that share their text with another clip: false negatives in a contrastive batch
        # and ties in retrieval.
        "duplicate_text_clips": int(text.duplicated(keep=False).sum()),
        "distinct_texts": int(text.nunique()),
    }
    if "signer" in rows.columns:
        out["signers"] = int(rows["signer"].nunique())
    return out


def length_stats(n: np.ndarray) -> dict[str, float]:
    """Percentiles (numpy's linear interpolation, to 3 decimals) and the maximum of clip lengths."""
    stats = {f"p{q}": round(float(v), 3) for q, v in zip(PERCENTILES, np.percentile(n, PERCENTILES))}
    stats["max"] = float(n.max())
    return stats


def missing_rates(ds: PackedDataset, block: int = 1 << 16) -> dict[str, Any]:
    """Share of (frame, point) entries with confidence 0, overall and per layout group."""
    groups = {k: list(v) for k, v in ((ds.meta.get("layout") or {}).get("groups") or {}).items()}
    counts = np.zeros(ds.n_points, dtype=np.int64)
    for i in range(0, len(ds.confidence), block):  # blocks: the array may be a large memory map
        counts += (np.asarray(ds.confidence[i:i + block]) == 0).sum(0)
    frames = max(1, len(ds.confidence))
    return {"all": float(counts.sum() / (frames * ds.n_points)),
            "groups": {g: float(counts[idx].sum() / (frames * len(idx))) for g, idx in groups.items() if idx}}


def format_info(info: dict[str, Any]) -> str:
    """A human-readable report: a header and one table row per split (and all)."""
    from rich.console import Console
    from rich.table import Table

    d = info["dims"]
    head = [f"dataset {info['path']}",
            f"layout {info['layout']}: {d['points']} points x {d['coords']} coords; "
            f"siglip dim {d['siglip']}; fps {info['fps']}",
            f"{info['n_clips']} clips, {info['n_frames']} frames; content hash {info['content_hash']}",
            "missing points: " + _pct(info["missing"]["all"]) + " overall"
            + "".join(f", {g} {_pct(v)}" for g, v in info["missing"]["groups"].items())]
    table = Table(box=None, pad_edge=False, header_style="bold")
    cols = (["split", "clips", "frames"] + [f"p{q}" for q in PERCENTILES] + ["max"]
            + [f">{t}" for t in THRESHOLDS] + ["dup-text clips", "distinct texts", "signers"])
    for c in cols:
        table.add_column(c, justify="left" if c == "split" else "right")
    for name, row in [*info["splits"].items(), ("all", info["all"])]:
        table.add_row(*_row_cells(name, row))
    buf = io.StringIO()
    Console(file=buf, width=160, color_system=None, soft_wrap=False).print(table)
    return "\n".join(head) + "\n\n" + buf.getvalue().rstrip() + "\n"


def _row_cells(name: str, row: dict[str, Any]) -> list[str]:
    length = row["length"]
    return ([name, str(row["clips"]), str(row["frames"])] + [f"{length[f'p{q}']:.1f}" for q in PERCENTILES]
            + [f"{length['max']:.0f}"] + [_pct(row["over"][str(t)]) for t in THRESHOLDS]
            + [str(row["duplicate_text_clips"]), str(row["distinct_texts"]), str(row.get("signers", "-"))])


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"

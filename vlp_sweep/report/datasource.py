"""What data the sweep ran on: real, synthetic, or unknown.

The plan's baseline metrics and targets were measured on its real data; against a sweep on the
synthetic corpus they are numbers from another dataset, so the report shows them for reference and
judges nothing against them. The source of truth is ``sweep.json["datasets"]`` (one entry per
dataset the sweep used: ``{"path", "content_hash", "source", "splits"}``; ``source`` is
``"synthetic"`` for ``vlp-sweep data synth`` output). Sweeps written before that key existed fall back
to the ``meta.json`` of the spec's ``data.path`` (``provenance.source``; an imported dataset says
``"source": "import"`` at its top level).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vlp_sweep.report.types import DataSource
from vlp_sweep.sweep.tables.results import Sweep


def data_source(sweep: Sweep) -> DataSource:
    """Whether the sweep's data is synthetic, real or unknown, and what says so."""
    listed = sweep.meta.get("datasets")
    if isinstance(listed, list) and listed:
        found = [(str(d.get("path", "?")), d.get("source")) for d in listed if isinstance(d, dict)]
        return _judge(found, "sweep.json datasets")
    found = []
    for path in _data_paths(sweep.spec):
        meta = _read_meta(path, sweep.run_dir)
        if meta is not None:
            found.append((path, _meta_source(meta)))
    if not found:
        return DataSource("unknown", "data source unknown: sweep.json lists no datasets and no meta.json "
                                     "was found at the spec's data.path")
    return _judge(found, "the data's meta.json")


def _judge(found: list[tuple[str, Any]], where: str) -> DataSource:
    listing = ", ".join(f"{p} ({s or 'source not recorded'})" for p, s in found)
    if any(s == "synthetic" for _, s in found):
        return DataSource("synthetic", f"{where}: {listing}")
    if found and all(s for _, s in found):
        return DataSource("real", f"{where}: {listing}")
    return DataSource("unknown", f"data source unknown ({where}: {listing})")


def _data_paths(spec: dict[str, Any]) -> list[str]:
    """The spec's ``data.path``: the base value and any searched values."""
    base = spec.get("base") or {}
    paths = [base.get("data.path") or (base.get("data") or {}).get("path")]
    entry = (spec.get("search") or {}).get("data.path")
    if isinstance(entry, dict):
        paths += list(entry.get("choice") or entry.get("grid") or [])
    return [str(p) for p in dict.fromkeys(paths) if p]


def _read_meta(path: str, run_dir: Path) -> dict[str, Any] | None:
    """meta.json of a data folder: the path as given (the report runs where the sweep ran), else relative
    to the project root above ``runs/NAME``."""
    for folder in (Path(path), run_dir.resolve().parent.parent / path):
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        return meta if isinstance(meta, dict) else None
    return None


def _meta_source(meta: dict[str, Any]) -> str | None:
    prov = meta.get("provenance")
    source = prov.get("source") if isinstance(prov, dict) else None
    return str(source or meta.get("source") or "") or None

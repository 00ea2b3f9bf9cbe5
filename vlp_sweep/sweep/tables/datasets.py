"""Where each dataset a sweep uses came from, for ``sweep.json["datasets"]``.

One entry per ``data.path`` a trial can use (fixed or searched), as the report reads it
(``vlp_sweep/report/datasource.py``)::

    {"path": "data/quickstart", "content_hash": "1901b2...", "source": "synthetic",
     "splits": {"train": 800, "dev": 200, "test": 200}}

``source`` comes from the dataset's ``meta.json``: ``provenance.source`` (``synthetic`` for
``vlp-sweep data synth``), else its top-level ``source`` (``import`` for ``vlp-sweep data import``);
None when the folder does not say. The report judges the plan's baseline numbers and targets by it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vlp_sweep.space.spec import SweepSpec

__all__ = ["dataset_entries"]


def dataset_entries(spec: SweepSpec) -> list[dict[str, Any]]:
    """The provenance of every dataset the sweep's trials can use (the driver checked they load)."""
    return [_entry(str(path)) for path in dict.fromkeys(spec.possible_values("data.path"))]


def _entry(path: str) -> dict[str, Any]:
    from vlp_sweep.data.packed import load_packed
    from vlp_sweep.errors import UserError

    try:
        ds = load_packed(path, mmap=True, check_values=False)
    except UserError as e:  # gone since the driver's own check: say so rather than fail the sweep
        return {"path": path, "content_hash": None, "source": None, "splits": {}, "error": str(e)}
    meta = ds.meta
    prov = meta.get("provenance")
    source = (prov.get("source") if isinstance(prov, dict) else None) or meta.get("source") or None
    splits = {str(k): int(v) for k, v in ds.manifest["split"].value_counts(sort=False).items()}
    return {"path": path, "content_hash": meta.get("content_hash"), "source": source, "splits": splits}

"""Packed datasets: the one on-disk format every source is converted to (see DESIGN.md "Data")."""

from vlp_sweep.data.packed import PackedDataset, load_packed, write_packed

__all__ = ["PackedDataset", "load_packed", "write_packed"]

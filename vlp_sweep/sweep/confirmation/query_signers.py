"""Who signed each query of the confirmation's held-out split: ``runs/<name>/confirm_queries.parquet``.

The report's verdicts take signers as clusters (a second lab would test on new signers, and R@1 moves
with the signer), so it needs each test query's signer id beside the per-query ranks. Query i of the
split is manifest row i of that split, in file order (the order the trainer evaluates in:
``PackedDataset.split``). A dataset without a ``signer`` column gets the table with empty ids: the
report then takes queries as the units and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from vlp_sweep.sweep.tables.leaderboard import write_table_atomic

QUERIES_FILE = "confirm_queries.parquet"
QUERIES_SCHEMA = pa.schema([("split", pa.string()), ("query", pa.int64()), ("clip_id", pa.string()),
                            ("signer", pa.string())])


def query_rows(data_path: str, split: str) -> list[dict[str, Any]]:
    """One row per query of ``split`` of the packed dataset at ``data_path``: its clip id and signer."""
    from vlp_sweep.data.packed import load_packed

    rows = load_packed(data_path, check_values=False).split(split)
    signers = rows["signer"] if "signer" in rows else [None] * len(rows)
    return [{"split": split, "query": i, "clip_id": str(cid), "signer": None if pd.isna(s) else str(s)}
            for i, (cid, s) in enumerate(zip(rows["id"], signers))]


def write_queries(run_dir: Path, data_path: str, split: str) -> Path:
    """Write the held-out split's queries with their signers (whole, atomically)."""
    path = run_dir / QUERIES_FILE
    write_table_atomic(query_rows(data_path, split), QUERIES_SCHEMA, path)
    return path

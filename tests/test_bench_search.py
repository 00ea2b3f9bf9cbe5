"""benchmarks/bench_search.py replays searches against the committed table (numbers are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "benchmarks" / "data" / "search_table.json"


def test_search_table_is_complete() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from search_table import EPOCHS, SEEDS, all_configs, config_key
    finally:
        sys.path.pop(0)
    table = json.loads(TABLE.read_text())
    keys = {config_key(p) for p in all_configs()}
    assert set(table["rows"]) == keys  # else the benchmark would start training the missing ones
    assert all(len(v) == EPOCHS for v in table["rows"].values())
    assert all(len(c) == len(SEEDS) for c in table["curves"].values())


def test_search_benchmark_smoke() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_search.py"), "--smoke"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for method in ("(a) tpe+asha", "(a0) tpe+asha, before item 1", "(b) random", "(c) random+asha"):
        assert out.stdout.count(method) == 2, out.stdout  # in both tables
    assert "target: the final best of (b)" in out.stdout

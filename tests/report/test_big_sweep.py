"""A report that stays readable at 1,000 trials: what needs a look first, the rest counted; errors grouped."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlp_sweep.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 trials of 3 evaluations replayed through the driver's callback (benchmarks/bench_bookkeeping.py):
    every 40th errors (four kinds of error), every 9th warns."""
    run = tmp_path_factory.mktemp("big") / "bench"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_bookkeeping.py"), "--trials", "1000",
                          "--evals", "3", "--queries", "200", "--keep", str(run)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    return run


@pytest.mark.slow
def test_report_and_status_of_1000_trials_are_short_and_quick(big: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    assert main(["status", str(big)]) == 0
    status_s = time.perf_counter() - t0
    status = capsys.readouterr().out
    t0 = time.perf_counter()
    assert main(["report", str(big), "--out", str(tmp_path), "--resamples", "200"]) == 0
    report_s = time.perf_counter() - t0
    terminal = capsys.readouterr().out
    print(f"\nstatus {status_s:.1f} s, report {report_s:.1f} s")  # README: measured 1-6 s on 2 shared cores
    # the bound leaves room for a busy machine
    assert status_s < 20 and report_s < 30, (status_s, report_s)
    # 25 errored trials, four kinds: one line per kind, with a count.
    assert sum(ln.startswith("ERROR") for ln in status.splitlines()) <= 4 + 4  # a long error wraps once
    assert "ERROR x7 (" in status.replace("\n", " ")
    assert sum(ln.startswith("ERROR") for ln in terminal.splitlines()) <= 8
    md = (tmp_path / "bench" / "report.md").read_text()
    monitoring = md[md.index("## Monitoring"):md.index("## Errored trials")]
    assert monitoring.count("\n| 0000") == 25  # the table: the worst of those that need a look
    assert "not listed: 975 trials" in monitoring and "warn" in monitoring
    errors = md[md.index("## Errored trials (25)"):md.index("## Where the numbers")]
    assert errors.count("\n| ") == 1 + 4  # the header, four kinds
    assert len(md) < 40_000  # was 139 kB, 120 kB of it the Monitoring table

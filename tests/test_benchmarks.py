"""The benchmark scripts run end to end in their tiny --smoke mode (numbers are not checked here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, timeout: int = 300) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                         text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_trainer_benchmark_smoke() -> None:
    out = _run("bench_trainer.py", "--smoke", "--device", "cpu")
    assert "samples/s=" in out and "cached4 vs plain" in out


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
def test_trainer_benchmark_parallel_and_profile_smoke() -> None:
    # "2" twice on the line: the workers must still get --steps 2
    out = _run("bench_trainer.py", "--smoke", "--device", "cpu", "--steps", "2", "--parallel", "2")
    assert "2 processes at once" in out
    assert "aten::" in _run("bench_trainer.py", "--smoke", "--device", "cpu", "--profile")


def test_verdicts_benchmark_smoke() -> None:
    # The calibration table of the seed-level verdicts, a few tables per cell (numbers not checked here).
    out = _run("bench_verdicts.py", "--smoke", "--seeds", "2", timeout=120)
    assert "| quickstart | t2v_R1 | seed-level (new) | 2 |" in out and "paired_over_seeds (old)" in out


def test_bookkeeping_benchmark_smoke() -> None:
    out = _run("bench_bookkeeping.py", "--smoke")
    assert "per-result cost at    10 trials" in out and "peak RSS" in out


def test_metrics_benchmark_smoke() -> None:
    out = _run("bench_metrics.py", "--smoke", "--device", "cpu")
    assert "count" in out and "argsort" in out


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
def test_orchestration_benchmark_smoke() -> None:
    out = _run("bench_orchestration.py", "--smoke", timeout=900)
    assert "ratio sweep/sequential" in out and out.count("ratio (wall - start-up)") == 2


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
def test_phase1_benchmark_smoke() -> None:
    out = _run("bench_phase1.py", "--smoke", timeout=600)
    assert "trials/hour" in out and "best trial" in out


@pytest.mark.parametrize("script", ["devkit.sh", "gpu_check.sh"])
def test_device_scripts_parse(script: str) -> None:
    # They run on a GPU machine (no registry there) or need the network: here only their syntax is checked.
    out = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_gpu_check_refuses_an_unknown_argument(tmp_path: Path) -> None:
    env = {"OUT": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    out = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dryrun"], capture_output=True,
                         text=True, cwd=ROOT, env=env)
    assert out.returncode == 2 and "usage:" in out.stderr  # before touching the kit or the GPU


def test_gpu_table_reads_the_stage_logs(tmp_path: Path) -> None:
    logs = {"ref_compile": "mode=tuned+compile samples/s=14299 TFLOP/s=1",
            "ours": "plain    batch=752 samples/s=20000.0\ncached4  batch=752 samples/s=15000.0",
            "syncs": "host syncs inside 3 timed steps: 0 (torch.cuda.set_sync_debug_mode('error') raised none)",
            "packed": "1 processes at once: samples/s each 9000, together 9000\n"
                      "4 processes at once: samples/s each 3000 3000 3000 3000, together 12000",
            "phase1": "trials 6 (TERMINATED 6), wall 1.0 min, 360 trials/hour\nGPU busy: 90% of samples busy, mean "
                      "utilisation 50%; once the trials started: 85% busy, mean 55%"}
    for name, text in logs.items():
        (tmp_path / f"{name}.log").write_text(text)
    (tmp_path / "stages.tsv").write_text("ours\t0\t30\ntests\tskipped\t0\n")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_table.py"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"ours, plain step \(samples/s\)\s+20000\s+1.40x", out)
    assert re.search(r"cached x4 cost per sample vs plain\s+1.33x", out)
    assert "0 in the timed steps" in out and re.search(r"4 packed trials together.*12000\s+1.33x of one alone", out)
    assert re.search(r"GPU busy once trials started \(%\)\s+85", out) and "tests skipped" in out


def test_checkpoint_io_benchmark_smoke() -> None:
    out = _run("bench_checkpoint_io.py", "--smoke", "--rounds", "1")
    assert "checkpoint I/O per epoch" in out and "before" in out and "now" in out


def test_trial_benchmark_smoke() -> None:
    out = _run("bench_trial.py", "--smoke")
    assert "share of the trial's wall time outside training steps" in out and "checkpoint" in out


def test_health_benchmark_smoke() -> None:
    out = _run("bench_health.py", "--smoke", "--device", "cpu")
    assert "without health" in out and "overhead" in out


def test_option_c_benchmark_smoke() -> None:
    out = _run("option_c.py", "--smoke")
    assert "log(100)" in out and "mean best R@1" in out


def test_data_cache_benchmark_smoke() -> None:
    out = _run("bench_data_cache.py", "--smoke")
    assert "no cache" in out and "fusion on again" in out

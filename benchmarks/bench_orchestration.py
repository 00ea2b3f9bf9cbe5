"""Orchestration overhead: a sweep of N identical-size trials on Ray Tune (one at a time) against the
same N trials run one after another with `vlp-sweep train`. Prints both wall times, the ratio and
the sweep's fixed start-up cost (Ray start, first trial scheduled).

    python benchmarks/bench_orchestration.py --trials 3 --epochs 6      # trials of ~30 s on 2 CPU cores
    python benchmarks/bench_orchestration.py --smoke                    # seconds-long trials, for CI
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def vlp(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: vlp-sweep {' '.join(args)}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    trials, epochs = (2, 1) if a.smoke else (a.trials, a.epochs)
    work = Path(tempfile.mkdtemp(prefix="vlp-bench-orch-"))
    sizes = ["--train", "96", "--dev", "32", "--test", "8"] if a.smoke else []
    vlp("data", "synth", "--out", str(work / "data"), *sizes, cwd=work)
    base = {"data.path": str(work / "data"), "model.d_model": 64, "model.video_layers": 1, "model.text_layers": 1,
            "model.embed_dim": 64, "optim.batch_size": 64, "optim.epochs": epochs, "run.device": "cpu",
            "run.num_threads": 1}
    lrs = [1e-3 * (1 + i / 10) for i in range(trials)]
    space = {"name": "orch", "base": base, "search": {"optim.lr": {"grid": lrs}},
             "search_alg": {"type": "grid"}, "scheduler": {"type": "none"}, "num_samples": 1,
             "max_concurrent": 1, "resources": {"cpu": 1, "gpu": 0}, "wandb": {"mode": "disabled"}}
    (work / "space.yaml").write_text(yaml.safe_dump(space))
    sweep_s = vlp("run", str(work / "space.yaml"), "--runs-root", str(work / "runs"), cwd=work)
    board = pd.read_parquet(work / "runs" / "orch" / "leaderboard.parquet")
    train_in_sweep = float(board["time_s"].sum())
    seq_s = 0.0
    for i in range(trials):
        sets = [f"--set={k}={v}" for k, v in base.items()] + [f"--set=optim.lr={1e-3 * (1 + i / 10)}"]
        seq_s += vlp("train", *sets, "--out", str(work / f"seq{i}"), cwd=work)
    print(f"trials={trials} epochs={epochs} (trial training time in the sweep: {train_in_sweep / trials:.1f} s each)")
    print(f"sequential `vlp-sweep train`: {seq_s:.1f} s")
    print(f"sweep on Ray Tune:           {sweep_s:.1f} s")
    print(f"ratio sweep/sequential:      {sweep_s / seq_s:.2f}")
    print(f"fixed cost (sweep wall - trial training time): {sweep_s - train_in_sweep:.1f} s; "
          f"per trial beyond training: {(sweep_s - train_in_sweep) / trials:.1f} s")


if __name__ == "__main__":
    main()

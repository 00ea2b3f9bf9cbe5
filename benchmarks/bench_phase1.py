"""The plan's sweep at Phoenix scale: synthetic motion over the real Phoenix-2014T sentences, glosses and
clip lengths (7096 / 519 / 642 clips), search_spaces/phase1_options.yaml (TPE + ASHA). Prints the wall
time, the share of it the GPU was busy (nvidia-smi, sampled every 0.5 s), trials per hour and the best
metrics from the leaderboard.

    python benchmarks/bench_phase1.py                       # on a GPU machine
    python benchmarks/bench_phase1.py --smoke               # a few small CPU trials, for CI
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "phoenix14t" / "corpus.csv"


class GpuSampler(threading.Thread):
    """Polls nvidia-smi; busy share = samples with utilisation > 0 over all samples."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(max(float(x) for x in out.stdout.split()))
            time.sleep(0.5)

    def busy(self) -> str:
        if not self.samples:
            return "n/a (no nvidia-smi)"
        busy = sum(s > 0 for s in self.samples) / len(self.samples)
        mean = sum(self.samples) / len(self.samples)
        # Once the trials have started: from the first busy sample to the last (Ray's start-up and the data
        # set-up before, the report after, left out).
        on = [i for i, s in enumerate(self.samples) if s > 0]
        run = self.samples[on[0]:on[-1] + 1] if on else []
        started = (f"; once the trials started: {100 * sum(s > 0 for s in run) / len(run):.0f}% busy, mean "
                   f"{sum(run) / len(run):.0f}%") if run else ""
        return f"{100 * busy:.0f}% of samples busy, mean utilisation {mean:.0f}%{started}"


def vlp(*args: str, cwd: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "vlp_sweep", *args], cwd=cwd)
    if out.returncode != 0:
        sys.exit(f"failed: vlp-sweep {' '.join(args)}")


def smoke_space(space: dict, data: Path) -> dict:  # type: ignore[type-arg]
    """The same search over a tiny CPU model: exercises the script, not the GPU."""
    space["base"].update({"data.path": str(data), "optim.epochs": 2, "optim.batch_size": 16, "optim.grad_accum": 2,
                          "model": {"d_model": 32, "video_layers": 1, "text_layers": 1, "heads": 2, "embed_dim": 32}})
    space["search"]["data.max_frames"] = {"choice": [16, 24]}
    space["search"]["optim.warmup_steps"] = {"choice": [0, 2]}
    space.update(num_samples=2, max_concurrent=2, resources={"cpu": 1, "gpu": 0},
                 scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2}, wandb={"mode": "disabled"},
                 confirm="none")  # two searched configurations: phase1's top 3 cannot be confirmed
    space["search_alg"]["n_startup_trials"] = 2
    return space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default=str(ROOT / "search_spaces" / "phase1_options.yaml"))
    p.add_argument("--data", default=str(ROOT / "data" / "phoenix14t"))
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vlp-bench-phase1-"))
    data = work / "data" if a.smoke else Path(a.data)
    if not data.exists():
        sizes = ["--train", "64", "--dev", "24", "--test", "8"] if a.smoke else []
        source = ["--corpus", str(CORPUS)] if CORPUS.exists() else []
        vlp("data", "synth", "--out", str(data), *source, *sizes, cwd=ROOT)
    space = yaml.safe_load(Path(a.space).read_text())
    space["base"]["data.path"] = str(data)
    if a.smoke:
        space = smoke_space(space, data)
    (work / "space.yaml").write_text(yaml.safe_dump(space))
    gpu = GpuSampler()
    if shutil.which("nvidia-smi"):
        gpu.start()
    t0 = time.time()
    vlp("run", str(work / "space.yaml"), "--name", "phase1", "--runs-root", str(work / "runs"), cwd=ROOT)
    wall = time.time() - t0
    gpu.stop.set()
    board = pd.read_parquet(work / "runs" / "phase1" / "leaderboard.parquet")
    best = board.iloc[0]
    counts = ", ".join(f"{k} {v}" for k, v in board.status.value_counts().items())
    print(f"trials {len(board)} ({counts}), wall {wall / 60:.1f} min, "
          f"{len(board) / (wall / 3600):.0f} trials/hour")
    print(f"GPU busy: {gpu.busy()}")
    print(f"best trial {best.trial_id}: t2v R@1 {best.best_t2v_R1:.2f} R@5 {best.best_t2v_R5:.2f} "
          f"R@10 {best.best_t2v_R10:.2f} MedR {best.best_t2v_MedR:g}; v2t R@1 {best.best_v2t_R1:.2f}")
    print(f"sweep folder: {work / 'runs' / 'phase1'}")


if __name__ == "__main__":
    main()

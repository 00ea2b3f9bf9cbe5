"""Per-trial data set-up with and without the reused worker's data cache (``vlp_sweep/train/inputs/data_cache.py``).

A sweep's worker runs trial after trial on the same dataset. This times the trainer's set-up (open and
check the dataset, build the device-resident train and eval splits, build the model and optimizer) for a
worker's first trial and for the trials after it, on a Phoenix-2014T-sized synthetic corpus (7,096 / 519 /
642 clips, about 580k frames), one CPU thread.

    python benchmarks/bench_data_cache.py              # about 30 s (most of it making the corpus)
    python benchmarks/bench_data_cache.py --smoke      # a tiny corpus, seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vlp_sweep.config import make_config
from vlp_sweep.data.synth import synthesize
from vlp_sweep.train.inputs import data_cache
from vlp_sweep.train.state import setup

# Trials as a sweep alternates them: the quickstart's model, other frame budgets, fusion off.
TRIALS = [("first trial", {}), ("next trial, another frame budget and dropout", {"data.max_frames": 48,
                                                                                  "model.dropout": 0.4}),
          ("next trial, SigLIP fusion off (a new split entry)", {"data.use_siglip": False}),
          ("next trial, fusion on again", {"data.max_frames": 32})]


def _config(data: Path, over: dict[str, object]) -> object:
    base: dict[str, object] = {"data.path": str(data), "model.d_model": 64, "model.video_layers": 1,
                               "model.text_layers": 1, "model.heads": 4, "model.embed_dim": 64,
                               "optim.batch_size": 64, "run.device": "cpu"}
    return make_config({**base, **over})


def _time_setup(data: Path, over: dict[str, object]) -> float:
    t0 = time.perf_counter()
    setup(_config(data, over), None)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="a tiny corpus: checks the script runs")
    a = p.parse_args()
    torch.set_num_threads(1)
    sizes = dict(train=96, dev=32, test=8) if a.smoke else dict(train=7096, dev=519, test=642)
    data = synthesize(Path(tempfile.mkdtemp(prefix="vlp-bench-cache-")) / "data", **sizes)
    print(f"corpus: {sum(sizes.values())} clips ({sizes}); set-up per trial, seconds")
    _time_setup(data, {})  # imports and PyTorch's first-optimizer cost (torch._dynamo) out of the numbers
    rows = []
    for label, over in TRIALS:
        data_cache.clear()
        fresh = _time_setup(data, over)  # as without the cache: every trial loads
        rows.append((label, fresh))
    data_cache.clear()
    print(f"{'trial':52s} {'no cache':>9s} {'cache':>9s}")
    for (label, fresh), (_, over) in zip(rows, TRIALS):
        cached = _time_setup(data, over)
        print(f"{label:52s} {fresh:9.3f} {cached:9.3f}")


if __name__ == "__main__":
    main()

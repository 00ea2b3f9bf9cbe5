"""A sweep trial's checkpoint I/O per epoch at the plan's model size (d 512, 4 + 4 layers, with AdamW's state):
as before 0.3 (last.pt written and fsynced then read back for its sha256, best.pt written and fsynced again,
a copy into the folder handed to Ray, Ray's copy into the trial's storage) against now (written once with its
sha256 computed on the way, best.pt and Ray's folder hard links, Ray's copy). Interleaved rounds.

    python benchmarks/bench_checkpoint_io.py [--rounds 4] [--dir /tmp] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import torch

from vlp_sweep.atomic import atomic_path
from vlp_sweep.config import make_config
from vlp_sweep.train.checkpoint import FORMAT, link_or_copy, save_checkpoint, sha256_file
from vlp_sweep.train.contract import build_model
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.state import build_optimizer

PLAN = {"model.d_model": 512, "model.video_layers": 4, "model.text_layers": 4, "model.heads": 8,
        "model.embed_dim": 256}


SMOKE = {"model.d_model": 32, "model.video_layers": 1, "model.text_layers": 1, "model.heads": 2,
         "model.embed_dim": 16}


def state(scale: dict[str, int]) -> dict:  # type: ignore[type-arg]
    """The model's and AdamW's state after one step, as a full checkpoint holds them."""
    cfg = make_config(scale)
    model = build_model(cfg, ModelDims(133 * 4, 768, 0, 3000, 180, 32, 256))
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict()}


def old_save(obj: dict, path: str) -> str:  # type: ignore[type-arg]
    """save_checkpoint as it was: write, fsync, rename, then read the file back for its sha256."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **obj}, f)
        return sha256_file(tmp)


def ray_copy(folder: str) -> None:
    """What Ray Tune does with a reported checkpoint folder on local storage: a copy into the trial's folder."""
    shutil.copytree(folder, folder + "_ray")
    shutil.rmtree(folder + "_ray")


def before(obj: dict, work: str) -> None:  # type: ignore[type-arg]
    old_save(obj, f"{work}/last.pt")
    old_save(obj, f"{work}/best.pt")
    d = tempfile.mkdtemp(dir=work)
    shutil.copy(f"{work}/last.pt", f"{d}/full.pt")
    ray_copy(d)
    shutil.rmtree(d)


def now(obj: dict, work: str) -> None:  # type: ignore[type-arg]
    save_checkpoint(obj, f"{work}/last.pt")
    link_or_copy(f"{work}/last.pt", f"{work}/best.pt")
    d = tempfile.mkdtemp(dir=work)
    link_or_copy(f"{work}/last.pt", f"{d}/full.pt")
    ray_copy(d)
    shutil.rmtree(d)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--dir", default=tempfile.gettempdir(), help="where the checkpoints are written")
    p.add_argument("--smoke", action="store_true", help="a tiny model: checks the script runs")
    a = p.parse_args()
    obj = state(SMOKE if a.smoke else PLAN)
    work = tempfile.mkdtemp(dir=a.dir, prefix="vlp-bench-ckpt-")
    try:
        times: dict[str, list[float]] = {"before": [], "now": []}
        for _ in range(a.rounds):
            for name, fn in (("before", before), ("now", now)):
                t0 = time.perf_counter()
                fn(obj, work)
                times[name].append(time.perf_counter() - t0)
        size = os.path.getsize(f"{work}/last.pt") / 2**20
        print(f"checkpoint {size:.0f} MiB; checkpoint I/O per epoch (median of {a.rounds}, interleaved): "
              f"before {statistics.median(times['before']):.2f} s, now {statistics.median(times['now']):.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

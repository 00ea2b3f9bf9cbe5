"""Where a trial's wall time goes outside its training steps: set-up, evaluation, checkpoint writes and the
report to the sweep, per epoch, for a phase1-shaped trial (cached accumulation x4, SigLIP fusion, Phoenix
clip lengths, an evaluation and a checkpoint every epoch).

    python benchmarks/bench_trial.py                  # a CPU-sized model
    python benchmarks/bench_trial.py --model plan     # the plan's model (d 512, 4 + 4 layers): its checkpoints
                                                      # are the plan's size (about 330 MB with Adam's state)
    python benchmarks/bench_trial.py --device cuda --model plan --clips 2000   # phase1_short's trial on a GPU
    python benchmarks/bench_trial.py --smoke

The report is what a sweep trial does with each evaluation (``sweep/trial.py``): the checkpoint put in a
folder of its own (a hard link), then copied once, as Ray Tune persists it into the trial's folder. The share outside
training is 1 - (time in training epochs) / (wall time of the trial); on a GPU the epochs end with the one
read of their losses, so their time is the device's.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from vlp_sweep.config import make_config
from vlp_sweep.data.synth import synthesize
from vlp_sweep.train.checkpoint import link_or_copy
from vlp_sweep.train.trainer import Evaluation, fit

CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/phoenix14t/corpus.csv"
MODELS = {"cpu": {"model.d_model": 128, "model.video_layers": 2, "model.text_layers": 2, "model.heads": 4,
                  "model.embed_dim": 128},
          "plan": {"model.d_model": 512, "model.video_layers": 4, "model.text_layers": 4, "model.heads": 8,
                   "model.embed_dim": 256}}
PARTS = ("setup_s", "epoch_s", "eval_s", "checkpoint_s", "report_s")


def sweep_like_reporter(scratch: Path, seen: list[Evaluation], seconds: list[float],
                        copy: bool = False) -> Callable[[Evaluation], None]:
    """A reporter that does with each checkpoint what a sweep trial and Ray Tune do: a folder of its own
    for the checkpoint (a hard link; ``copy``: a copy, as the trial did before), then a copy into the trial's
    storage; it collects the evaluations and its seconds."""
    def report(ev: Evaluation) -> None:
        t0 = time.perf_counter()
        if ev.checkpoint is not None:
            with tempfile.TemporaryDirectory(prefix="vlp-ckpt-", dir=scratch) as d:
                (shutil.copy if copy else link_or_copy)(ev.checkpoint, Path(d) / "full.pt")
                persisted = scratch / f"checkpoint_{ev.epoch:06d}"
                shutil.copytree(d, persisted)
            shutil.rmtree(persisted)
        seen.append(ev)
        seconds.append(time.perf_counter() - t0)

    return report


def run(args: argparse.Namespace, work: Path) -> None:
    sizes = (96, 32) if args.smoke else (args.clips, max(32, args.clips * 3 // 20))
    data = synthesize(work / "data", train=sizes[0], dev=sizes[1], test=8,
                      **({"corpus": str(CORPUS)} if CORPUS.exists() and not args.smoke else {}))
    cfg = make_config(MODELS[args.model], {
        "data.path": str(data), "data.use_siglip": True, "data.max_frames": args.frames, "model.dropout": 0.2,
        "optim.batch_size": args.batch // 4, "optim.grad_accum": 4, "optim.accum_mode": "cached",
        "optim.epochs": 2 if args.smoke else args.epochs, "run.device": args.device,
        "run.out_dir": str(work / "out"), "run.eval_batch_size": 512})
    seen: list[Evaluation] = []
    report_s: list[float] = []
    t0 = time.perf_counter()
    fit(cfg, seen.append if args.no_report else sweep_like_reporter(work, seen, report_s, args.copy_report))
    _print(args, seen, report_s, time.perf_counter() - t0)


def _print(args: argparse.Namespace, seen: list[Evaluation], report_s: list[float], wall: float) -> None:
    m = [ev.metrics for ev in seen]
    train = sum(x["epoch_s"] for x in m)
    evals = sum(x.get("eval_s", float("nan")) for x in m)  # nan: a trainer that does not time its parts
    ckpt = sum(x.get("checkpoint_s", float("nan")) for x in m)
    rep = sum(report_s)
    setup = m[0].get("setup_s", float("nan")) if m else 0.0
    last = seen[-1].checkpoint if seen else None
    size = last.stat().st_size / 2**20 if last is not None and last.exists() else 0.0
    print(f"device={args.device} model={args.model} clips={96 if args.smoke else args.clips} frames={args.frames} "
          f"batch={args.batch} (cached x4) epochs={len(seen)} checkpoint={size:.0f} MiB "
          f"threads={torch.get_num_threads()}")
    print(f"wall {wall:.2f} s: set-up {setup:.2f}, training {train:.2f}, evaluation {evals:.2f}, "
          f"checkpoints {ckpt:.2f}, reports {rep:.2f}, other {wall - setup - train - evals - ckpt - rep:.2f}")
    print(f"per epoch: training {train / len(m):.3f} s, evaluation {evals / len(m):.3f} s, "
          f"checkpoint {ckpt / len(m):.3f} s, report {rep / len(m):.3f} s")
    print(f"share of the trial's wall time outside training steps: {1 - train / wall:.1%}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", choices=MODELS, default="cpu")
    p.add_argument("--clips", type=int, default=2000, help="training clips (dev: 15%%)")
    p.add_argument("--frames", type=int, default=64, help="data.max_frames")
    p.add_argument("--batch", type=int, default=256, help="clips per optimizer step (4 micro-batches)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--no-report", action="store_true", help="no sweep-like report after each evaluation")
    p.add_argument("--copy-report", action="store_true", help="the report copies the checkpoint (as before 0.3)")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vlp-bench-trial-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

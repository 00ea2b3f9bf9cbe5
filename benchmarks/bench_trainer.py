"""Trainer throughput: samples/s, model FLOP utilisation and peak memory of the real training step
(device-resident data, batches planned on the host and packed without padding, bf16 autocast on GPU, fused
AdamW, optional compile), for a plain step and for cached and naive accumulation; or (``--count``) the
operators, kernels and host syncs per optimizer step.

    python benchmarks/bench_trainer.py --device cuda [--compile]          # the plan's scale
    python benchmarks/bench_trainer.py --device cpu                       # a CPU-sized model
    python benchmarks/bench_trainer.py --device cpu --count --modes plain,cached4,naive4
    python benchmarks/bench_trainer.py --smoke                            # seconds, for CI

Run /work/shared/bench/reference_trainer.py beside it on the same GPU and report ratios. The FLOP
count is the reference script's formula (every clip at the full frame count), so MFU numbers are
comparable; padding is never computed here, so this MFU is an effective figure and can exceed what the
kernels do. Clip lengths are Phoenix-2014T's; ``--attention padded`` pads each clip for attention alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vlp_sweep.config import make_config
from vlp_sweep.train.contract import build_model
from vlp_sweep.train.distributed import DistContext, GatheredLoss
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.inputs.batching import SplitTensors
from vlp_sweep.train.loss import ContrastiveLoss
from vlp_sweep.train.state import TrainState, build_optimizer, speed_settings
from vlp_sweep.train.steps import StepBatch, epoch_batches, train_step
from vlp_sweep.train.watch.oom import OomRescue
from vlp_sweep.train.watch.syncs import SyncCounter

PLAN = dict(batch=750, frames=180, points=133, siglip=768, d=512, layers=4, text_len=32, vocab=8000, n=7096)
CPU = dict(batch=64, frames=64, points=50, siglip=32, d=128, layers=2, text_len=16, vocab=2000, n=1024)
SMOKE = dict(batch=8, frames=16, points=10, siglip=8, d=32, layers=1, text_len=8, vocab=100, n=64)


CORPUS = Path(__file__).resolve().parents[1].parent / "shared/data/phoenix14t/corpus.csv"
PLAN_FRAMES = 180  # the plan's MAX_FRAMES: clip lengths are scaled by frames / 180 at a smaller scale


def clip_lengths(s: dict[str, int], g: torch.Generator) -> torch.Tensor:
    """Phoenix-2014T's real training clip lengths (scaled to the bench's frames), so that the share of
    padding matches the plan's data; uniform lengths when the corpus is not beside the repository."""
    if CORPUS.exists():
        rows = pd.read_csv(CORPUS, usecols=["split", "n_frames"])
        real = torch.tensor(rows.loc[rows["split"] == "train", "n_frames"].to_numpy(np.int64))
        pick = real[torch.randint(len(real), (s["n"],), generator=g)]
        return (pick * s["frames"] / PLAN_FRAMES).round().long().clamp(min=1)
    return torch.randint(s["frames"] // 3, int(s["frames"] * 1.7), (s["n"],), generator=g)


def fake_split(s: dict[str, int], device: torch.device, dtype: torch.dtype) -> SplitTensors:
    g = torch.Generator().manual_seed(0)
    n = s["n"]
    length = clip_lengths(s, g)
    offset = torch.cat([torch.zeros(1, dtype=torch.long), length.cumsum(0)[:-1]])
    frames = int(length.sum())
    kpts = torch.randn(frames, s["points"], 3, generator=g).to(device, dtype)
    sig = torch.randn(frames, s["siglip"], generator=g).to(device, dtype)
    tlen = torch.randint(4, s["text_len"], (n,), generator=g)
    tok = torch.randint(2, s["vocab"], (n, s["text_len"]), generator=g)
    tmask = torch.arange(s["text_len"])[None] < tlen[:, None]
    return SplitTensors([str(i) for i in range(n)], [""] * n, kpts, sig, offset.to(device), length.to(device),
                        (tok * tmask).to(device), tmask.to(device), torch.arange(n, device=device),
                        length_host=length.numpy(), offset_host=offset.numpy(), token_len_host=tlen.numpy())


def flops_per_sample(s: dict[str, int]) -> float:
    # Same formula as the reference script: 6 x params-touched x tokens + attention, fwd + bwd.
    d, L = s["d"], s["layers"]
    return 6 * (L * 12 * d * d * (s["frames"] + s["text_len"]) + (s["points"] * 3 + s["siglip"]) * d * s["frames"]) \
        + 3 * L * 4 * d * (s["frames"] ** 2 + s["text_len"] ** 2)


def build(s: dict[str, int], device: torch.device, accum: int, compile_: bool, attention: str = "auto",
          mode: str = "cached", recompute: bool = False) -> TrainState:
    micro = s["batch"] // accum
    cfg = make_config({"data.max_frames": s["frames"], "data.max_text_len": s["text_len"], "model.d_model": s["d"],
                       "model.heads": max(1, s["d"] // 64), "model.video_layers": s["layers"],
                       "model.text_layers": s["layers"], "model.embed_dim": s["d"], "model.dropout": 0.2,
                       "optim.batch_size": micro, "optim.grad_accum": accum, "optim.accum_mode": mode,
                       "run.compile": compile_, "run.device": str(device), "run.attention": attention})
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    split = fake_split(s, device, dtype)
    dims = ModelDims(kpt_dim=s["points"] * 3, siglip_dim=s["siglip"], text_feature_dim=0, vocab_size=s["vocab"],
                     max_frames=s["frames"], max_text_len=s["text_len"], embed_dim=s["d"])
    model = build_model(cfg, dims).to(device)
    opt = build_optimizer(model, cfg, device)
    st = TrainState(cfg=cfg, device=device, model=model, crit=GatheredLoss(ContrastiveLoss(cfg.loss), DistContext()),
                    opt=opt, sched=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0), train=split, eval=split)
    speed_settings(st)  # the attention backend, compile (or its fallback line)
    if recompute:  # as after the out-of-memory rescue's first retry
        st.oom = OomRescue(2, device)
        st.oom.recompute = True
    return st


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_source(st: TrainState) -> Callable[[], StepBatch]:
    """The trainer's own step batches, epoch after epoch (planning and building are part of each step)."""
    epoch = 0
    batches = epoch_batches(st, epoch)

    def next_batch() -> StepBatch:
        nonlocal batches, epoch
        b = next(batches, None)
        if b is None:
            epoch += 1
            batches = epoch_batches(st, epoch)
            b = next(batches)
        return b

    return next_batch


def measure(st: TrainState, steps: int, warmup: int, ready: Callable[[], None] | None = None,
            sync_debug: bool = False) -> tuple[float, float]:
    """(samples/s, peak GiB) of the trainer's own optimizer step (batch planning and building included) over
    ``steps`` steps after ``warmup``; ``ready`` is called between the two (``--parallel`` starts every
    process's timing together). ``sync_debug`` (CUDA): a host sync inside the timed steps raises. Also sets
    ``LAST_CPU_S``: this process's CPU seconds per 1,000 samples (on a busy machine steadier than wall time)."""
    global LAST_CPU_S
    source = step_source(st)
    for _ in range(warmup):
        train_step(st, source())
    sync(st.device)
    if ready is not None:
        ready()
    if st.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(st.device)
    debug = sync_debug and st.device.type == "cuda"
    t0, c0 = time.perf_counter(), time.process_time()
    if debug:
        torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(steps):
            train_step(st, source())
    finally:
        if debug:
            torch.cuda.set_sync_debug_mode("default")
    sync(st.device)
    dt = time.perf_counter() - t0
    LAST_CPU_S = 1000 * (time.process_time() - c0) / max(1, steps * st.cfg.optim.batch_size * st.cfg.optim.grad_accum)
    if debug:
        print(f"host syncs inside {steps} timed steps: 0 (torch.cuda.set_sync_debug_mode('error') raised none)")
    peak = torch.cuda.max_memory_allocated(st.device) / 2**30 if st.device.type == "cuda" else float("nan")
    return steps * st.cfg.optim.batch_size * st.cfg.optim.grad_accum / dt, peak


# Operators that move no data (views, allocations, a cast to the dtype a tensor has, the CPU fused optimizer's
# read of its step count): no kernel on a GPU.
NO_KERNEL = {"aten::as_strided", "aten::view", "aten::_unsafe_view", "aten::reshape", "aten::expand", "aten::t",
             "aten::transpose", "aten::permute", "aten::unsqueeze", "aten::squeeze", "aten::slice", "aten::select",
             "aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind", "aten::narrow", "aten::alias",
             "aten::detach", "aten::detach_", "aten::resolve_conj", "aten::resolve_neg", "aten::empty",
             "aten::empty_strided", "aten::empty_like", "aten::to", "aten::lift_fresh", "aten::result_type",
             "aten::_local_scalar_dense", "aten::resize_", "aten::set_", "aten::is_nonzero", "aten::numpy_T",
             "aten::_reshape_alias", "aten::contiguous", "aten::expand_as", "aten::view_as", "aten::flatten"}


LAST_CPU_S = float("nan")


def count_step(st: TrainState, steps: int = 2) -> tuple[float, float, float]:
    """(operators, device kernels, host syncs) per optimizer step: the leaf operators the profiler records on
    the host that move data (``NO_KERNEL`` left out: each of the rest is a kernel launch on a GPU), the CUDA
    kernels on a GPU (nan on the CPU), and the reads of device values that would stall a GPU
    (``syncs.SyncCounter``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    source = step_source(st)
    train_step(st, source())  # warm-up: first-call set-up out of the count
    batches = [source() for _ in range(steps)]
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if st.device.type == "cuda" else [])
    with torch_profile(activities=acts) as prof, SyncCounter() as syncs:
        for b in batches:
            train_step(st, b)
        sync(st.device)
    events = prof.events()
    ops = sum(1 for e in events if e.name.startswith("aten::") and not e.cpu_children and e.name not in NO_KERNEL)
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA) \
        if st.device.type == "cuda" else float("nan")
    return ops / steps, kernels / steps, syncs.total / steps


def profile(st: TrainState, steps: int) -> None:
    """Where a plain step's time goes: the PyTorch profiler's top operators by self time on the device."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    measure(st, 0, warmup=3)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if st.device.type == "cuda" else [])
    with torch_profile(activities=acts) as prof:
        measure(st, steps, warmup=0)
    key = "self_device_time_total" if st.device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=20))


# name -> (micro-batches per step, accumulation mode); "r": layers recomputed, as the trainer falls back to
# when the whole step does not fit in memory (oom.py)
MODES = {"plain": (1, "cached"), "cached2": (2, "cached"), "cached4": (4, "cached"), "naive4": (4, "naive"),
         "cached4r": (4, "cached")}


def parallel(n: int, argv: list[str]) -> None:
    """``n`` copies of this benchmark's plain step at once on one device (as Ray packs trials with
    fractional GPUs: separate processes sharing the GPU); prints their summed samples/s."""
    cmd = [sys.executable, __file__, *argv, "--modes", "plain", "--worker"]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(n)]
    for pr in procs:  # each prints READY after warming up, then waits for a line on stdin
        assert pr.stdout is not None
        for line in pr.stdout:
            if line.startswith("READY"):
                break
    for pr in procs:
        assert pr.stdin is not None
        pr.stdin.write("go\n")
        pr.stdin.flush()
    rates = []
    for pr in procs:
        out, _ = pr.communicate()
        rates += [float(x.split("=")[1]) for x in out.split() if x.startswith("samples/s=")]
    if len(rates) != n:
        sys.exit(f"a parallel worker failed ({len(rates)} of {n} reported)")
    print(f"{n} processes at once: samples/s each {' '.join(f'{r:.0f}' for r in rates)}, together {sum(rates):.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=0, help="timed steps (default: 20 GPU, 5 CPU)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--attention", default="auto", choices=("auto", "varlen", "padded"), help="run.attention")
    p.add_argument("--sync-debug", action="store_true",
                   help="on a GPU: every device-to-host sync inside the timed steps is an error "
                        "(torch.cuda.set_sync_debug_mode)")
    p.add_argument("--count", action="store_true",
                   help="operators, kernels and host syncs per optimizer step instead of timing")
    p.add_argument("--batch", type=int, default=0, help="clips per optimizer step (default: the scale's)")
    p.add_argument("--modes", default="plain,cached2,cached4", help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--parallel", type=int, default=0, help="N processes of the plain step at once on the device")
    p.add_argument("--profile", action="store_true", help="profile the plain step instead of timing")
    p.add_argument("--peak-tflops", type=float, default=790.0, help="bf16 peak for MFU (H100 measured: 790)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: as is)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    s = dict(SMOKE if a.smoke else PLAN if device.type == "cuda" else CPU)
    s["batch"] = a.batch or s["batch"]
    steps = a.steps or (2 if a.smoke else 20 if device.type == "cuda" else 5)
    if a.parallel:
        return parallel(a.parallel, _without_parallel(sys.argv[1:]))
    if not a.worker:
        threads = f"cpu threads: {torch.get_num_threads()}  " if device.type == "cpu" else ""
        print(f"{threads}scale: {s}  attention={a.attention}  clip lengths: "
              f"{'Phoenix-2014T train' if CORPUS.exists() else 'uniform'}")
    if a.profile:
        return profile(build(s, device, 1, a.compile, a.attention), steps)
    if a.count:
        return counts(s, device, a)
    flops = flops_per_sample(s)
    results = {}
    for name in a.modes.split(","):
        st = build(s, device, MODES[name][0], a.compile, a.attention, MODES[name][1], name.endswith("r"))
        sps, peak = measure(st, steps, warmup=1 if a.smoke else 3, ready=_wait_for_go if a.worker else None,
                            sync_debug=a.sync_debug)
        results[name] = sps
        mfu = sps * flops / (a.peak_tflops * 1e12) * 100
        batch = st.cfg.optim.batch_size * st.cfg.optim.grad_accum  # a multiple of the micro-batch
        print(f"{name:8s} batch={batch} samples/s={sps:.1f}  TFLOP/s={sps * flops / 1e12:.2f}  "
              f"MFU(vs {a.peak_tflops:.0f})={mfu:.1f}%  peak_mem={peak:.1f}GiB  cpu_s/1k={LAST_CPU_S:.2f}", flush=True)
        del st
    for name in results:
        if name != "plain" and "plain" in results:
            print(f"cost per sample, {name} vs plain: {results['plain'] / results[name]:.2f}x")


def counts(s: dict[str, int], device: torch.device, a: argparse.Namespace) -> None:
    """Operators, kernels and host syncs per optimizer step for each mode, and the ratio to the plain step."""
    rows = {}
    for name in a.modes.split(","):
        accum, mode = MODES[name]
        rows[name] = count_step(build(s, device, accum, a.compile, a.attention, mode, name.endswith("r")))
        ops, kernels, syncs = rows[name]
        ratio = f"  ({ops / rows['plain'][0]:.2f}x plain)" if "plain" in rows and name != "plain" else ""
        print(f"{name:8s} operators/step={ops:.0f}{ratio}  kernels/step={kernels:.0f}  host syncs/step={syncs:g}",
              flush=True)


def _without_parallel(argv: list[str]) -> list[str]:
    """The command line minus ``--parallel N`` / ``--parallel=N`` (by position: N may occur elsewhere)."""
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x == "--parallel":
            skip = True
        elif not x.startswith("--parallel="):
            out.append(x)
    return out


def _wait_for_go() -> None:
    print("READY", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()

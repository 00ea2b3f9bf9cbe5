"""Retrieval ranks: counting in chunks (vlp_sweep.train.metrics) against argsort of the full matrix.

Prints, per N: wall time after a warm-up, peak memory and R@1 of both directions for
  matmul   the chunked matrix products alone (both directions), the floor for any method;
  count    retrieval_metrics(text=..., video=..., chunk=...), both directions;
  argsort  the full N x N similarity, argsort of each row, position of the positive (both directions);
           its ranks may differ from count's only where scores tie exactly (argsort breaks ties
           arbitrarily, count is optimistic), which the last column checks.
Peak memory is the growth over the level just before the method ran: on CUDA from
torch.cuda.max_memory_allocated (exact, tensors only); on the CPU the resident set size read from
/proc/self/statm by a thread every millisecond (so it includes allocator overhead and can miss a
peak shorter than that).

    python benchmarks/bench_metrics.py --device cpu --n 20000
    python benchmarks/bench_metrics.py --device cpu --n 100000 --dim 256 --dup 0.2   # duplicate-caption groups
    python benchmarks/bench_metrics.py --device cuda --n 20000 --n 100000
    python benchmarks/bench_metrics.py --smoke
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vlp_sweep.train.metrics import retrieval_metrics

GIB = 2**30
# Bytes per matrix entry at the argsort's peak: float32 scores, the sort's float32 copy of them and
# its int64 indices, and the bool "is the positive" mask.
ARGSORT_BYTES_PER_ENTRY = 4 + 4 + 8 + 1
Ranks = tuple[np.ndarray, np.ndarray]


class RssSampler:
    """Highest resident set size seen by a background thread polling /proc/self/statm."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device) -> tuple[float, float, Any]:
    """(seconds, peak memory growth in bytes, result) of one call of ``fn``."""
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        return time.perf_counter() - t0, torch.cuda.max_memory_allocated(device) - base, out
    base = rss_bytes()
    with RssSampler() as sampler:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return seconds, sampler.peak - base, out


def make_pairs(n: int, dim: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm text/video ``[n, dim]``; noisy pairs so that R@1 is well below 100."""
    g = torch.Generator(device=device).manual_seed(seed)
    t = torch.nn.functional.normalize(torch.randn(n, dim, device=device, generator=g), dim=1)
    v = torch.nn.functional.normalize(t + 0.8 * torch.randn(n, dim, device=device, generator=g), dim=1)
    return t, v


def matmul_only(t: torch.Tensor, v: torch.Tensor, chunk: int) -> None:
    for q, k in ((t, v), (v, t)):
        for i in range(0, len(q), chunk):
            q[i:i + chunk] @ k.T


def count_ranks(t: torch.Tensor, v: torch.Tensor, chunk: int, groups: torch.Tensor | None = None) -> Ranks:
    res = retrieval_metrics(text=t, video=v, chunk=chunk, groups=groups,
                            ties="pessimistic" if groups is not None else "optimistic")
    return res.t2v_ranks, res.v2t_ranks


def duplicate_groups(n: int, share: float, device: torch.device, seed: int) -> torch.Tensor:
    """Caption ids where ``share`` of the clips fall into duplicate groups (about 20 clips per group on
    average), the rest unique: what the trainer's evaluation passes (``run.eval_dedup``)."""
    rng = np.random.default_rng(seed)
    ids = np.arange(n)
    dup = rng.random(n) < share
    ids[dup] = n + rng.integers(0, max(1, int(dup.sum()) // 20), int(dup.sum()))
    return torch.from_numpy(ids).to(device)


def argsort_ranks(t: torch.Tensor, v: torch.Tensor) -> Ranks:
    sim = t @ v.T  # [N, N] all at once
    out = []
    for s in (sim, sim.T):  # rows are text queries, then video queries
        order = torch.argsort(s, dim=1, descending=True)
        hit = order == torch.arange(len(s), device=s.device)[:, None]
        del order
        out.append((hit.nonzero()[:, 1] + 1).cpu().numpy())
        del hit
    return out[0], out[1]


def r1(ranks: np.ndarray) -> float:
    return float(100.0 * np.mean(ranks <= 1))


def row(n: int, name: str, seconds: float, peak: float, ranks: Ranks | None, note: str = "") -> None:
    r = f"{r1(ranks[0]):7.2f} {r1(ranks[1]):7.2f}" if ranks is not None else f"{'-':>7} {'-':>7}"
    print(f"{n:>8} {name:<8} {seconds:9.3f} {peak / GIB:9.2f} {r}  {note}", flush=True)


def bench_size(n: int, args: argparse.Namespace, device: torch.device) -> None:
    t, v = make_pairs(n, args.dim, device, args.seed)
    warm = n if device.type == "cuda" else min(n, 2048)  # a full-size CPU warm-up would double the run
    tw, vw = t[:warm], v[:warm]
    matmul_only(tw, vw, args.chunk)
    count_ranks(tw, vw, args.chunk)
    seconds, peak, _ = measure(lambda: matmul_only(t, v, args.chunk), device)
    row(n, "matmul", seconds, peak, None)
    if args.dup > 0:  # the evaluation's path: duplicate captions as groups, pessimistic ties
        groups = duplicate_groups(n, args.dup, device, args.seed)
        seconds, peak, counted = measure(lambda: count_ranks(t, v, args.chunk, groups), device)
        row(n, "groups", seconds, peak, counted, f"{args.dup:.0%} of the clips in duplicate-caption groups")
        return
    seconds, peak, counted = measure(lambda: count_ranks(t, v, args.chunk), device)
    row(n, "count", seconds, peak, counted)
    bench_argsort(n, t, v, device, counted, args.chunk)


def bench_argsort(n: int, t: torch.Tensor, v: torch.Tensor, device: torch.device, counted: Ranks,
                  chunk: int) -> None:
    need, have = ARGSORT_BYTES_PER_ENTRY * n * n, available_bytes(device)
    if need > 0.9 * have:
        note = f"skipped: needs about {need / GIB:.1f} GiB, {have / GIB:.1f} GiB available"
        print(f"{n:>8} argsort   {note}", flush=True)
        return
    if device.type == "cuda":  # warm the sort kernels on a small matrix
        argsort_ranks(t[:2048], v[:2048])
    try:
        seconds, peak, ranks = measure(lambda: argsort_ranks(t, v), device)
    except (torch.OutOfMemoryError, MemoryError) as err:
        print(f"{n:>8} argsort   out of memory: {str(err).splitlines()[0][:100]}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return
    differ = int((ranks[0] != counted[0]).sum() + (ranks[1] != counted[1]).sum())
    # argsort orders exactly tied scores arbitrarily; any rank between the optimistic and the
    # pessimistic count is consistent with the same scores.
    pessimistic = retrieval_metrics(text=t, video=v, chunk=chunk, ties="pessimistic")
    outside = sum(int(((r < lo) | (r > hi)).sum()) for r, lo, hi in
                  zip(ranks, counted, (pessimistic.t2v_ranks, pessimistic.v2t_ranks)))
    row(n, "argsort", seconds, peak, ranks,
        f"ranks differing from count: {differ} of {2 * n}; outside the tie range: {outside}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--n", type=int, action="append", help="number of pairs (repeatable); default 20000")
    p.add_argument("--dim", type=int, default=512, help="embedding size")
    p.add_argument("--chunk", type=int, default=8192, help="queries per block when counting")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dup", type=float, default=0.0, help="share of clips in duplicate-caption groups (the "
                   "evaluation's grouped path instead of count/argsort)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, about a second")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    sizes = args.n or [20000]
    if args.smoke:
        sizes, args.dim, args.chunk = [300, 1000], 64, 256
    memory = ("torch.cuda.max_memory_allocated growth" if device.type == "cuda"
              else "peak RSS growth, /proc/self/statm sampled every 1 ms")
    print(f"device={device} threads={torch.get_num_threads()} dim={args.dim} chunk={args.chunk} "
          f"torch={torch.__version__}\nmemory: {memory}; times after a warm-up; R@1 in percent")
    print(f"{'N':>8} {'method':<8} {'time_s':>9} {'peak_GiB':>9} {'t2v_R1':>7} {'v2t_R1':>7}")
    for n in sizes:
        bench_size(n, args, device)


if __name__ == "__main__":
    main()

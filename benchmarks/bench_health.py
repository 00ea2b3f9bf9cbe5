"""What watching a run's health costs: the trainer's step with and without the health monitor (inputs probe,
gradient norm and NaN/inf guard, GPU sampling) and the out-of-memory rescue wrapper, interleaved rounds.

    python benchmarks/bench_health.py --device cpu            # the CPU-sized model of bench_trainer.py
    python benchmarks/bench_health.py --device cuda           # the plan's scale
    python benchmarks/bench_health.py --smoke                 # seconds, for CI
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import CPU, PLAN, SMOKE, build, step_source, sync  # noqa: E402

from vlp_sweep.train.state import TrainState  # noqa: E402
from vlp_sweep.train.steps import StepBatch, train_step  # noqa: E402
from vlp_sweep.train.watch.health import HealthMonitor  # noqa: E402
from vlp_sweep.train.watch.health_config import HealthConfig  # noqa: E402
from vlp_sweep.train.watch.oom import OomRescue  # noqa: E402


def watch(st: TrainState, on: bool) -> None:
    """Health monitor and rescue attached (as ``fit`` does) or both left out (the trainer before them)."""
    st.oom = OomRescue(2, st.device) if on else None
    st.health = HealthMonitor(HealthConfig(), st.device, {"kpts": True, "siglip": True}, 1, st.oom) if on else None


def timed_steps(st: TrainState, steps: int, source: Callable[[], StepBatch]) -> float:
    """Seconds per optimizer step, as ``steps.train_epoch`` runs it (observe, step, end of epoch)."""
    batches = [source() for _ in range(steps)]
    sync(st.device)
    t0 = time.perf_counter()
    for b in batches:
        if st.health is not None:
            st.health.observe(b.packed if b.packed is not None else b.parts()[0], b.micro)
        train_step(st, b)
    if st.health is not None:
        st.health.end_epoch()
    sync(st.device)
    return (time.perf_counter() - t0) / len(batches)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--rounds", type=int, default=0, help="interleaved rounds (default: 2 smoke, 6 otherwise)")
    p.add_argument("--steps", type=int, default=0, help="steps per round (default: 2 smoke, 5 CPU, 20 GPU)")
    a = p.parse_args()
    device = torch.device(a.device)
    s = dict(SMOKE if a.smoke else PLAN if device.type == "cuda" else CPU)
    rounds = a.rounds or (2 if a.smoke else 6)
    steps = a.steps or (2 if a.smoke else 20 if device.type == "cuda" else 5)
    st = build(s, device, 1, False)
    gen = step_source(st)
    watch(st, False)
    timed_steps(st, 2, gen)  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for on in (False, True):  # interleaved, so a busy machine slows both alike
            watch(st, on)
            times[on].append(timed_steps(st, steps, gen))
        print(f"round: without {times[False][-1]:.4f} s/step, with {times[True][-1]:.4f} s/step", flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"scale: {s}  rounds {rounds} x {steps} steps")
    per_round = " ".join(f"{100 * (b / a - 1):+.1f}%" for a, b in zip(times[False], times[True]))
    print(f"step s: without health {off:.4f}  with health {on:.4f}  overhead {100 * (on / off - 1):+.1f}% "
          f"(median over rounds; per round: {per_round})")


if __name__ == "__main__":
    main()

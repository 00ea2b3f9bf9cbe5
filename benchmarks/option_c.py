"""Option C on a small synthetic corpus: the logit scale and dev t2v R@1 of the two temperature inits.

Trains the search table's small model (benchmarks/search_table.py: 400 training clips, d_model 32,
constant learning rate) once per init and seed, and prints the logit scale at the start, after each
of the first epochs, and at the end, with dev t2v R@1 (best epoch and last). The trainer is whatever
``vlp_sweep`` the interpreter imports, so the same script measures an older checkout too:

    python benchmarks/option_c.py --data /tmp/optc --epochs 16 --seeds 0 1
    PYTHONPATH=/tmp/t11-before python benchmarks/option_c.py --data /tmp/optc   # a checkout of 04a21a6
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # search_table's settings, run from anywhere

from search_table import BASE, DATA  # noqa: E402

INITS = {"0.07": 0.07, "log(100)": "log(100)"}
SMOKE_DATA = {**DATA, "train": 48, "dev": 16, "test": 4}


def run(data: str, init: Any, seed: int, epochs: int) -> dict[str, Any]:
    from vlp_sweep.train.trainer import fit

    scales: list[float] = []
    r1: list[float] = []

    def report(ev: Any) -> None:
        scales.append(float(ev.metrics["logit_scale"]))
        r1.append(float(ev.metrics["t2v_R1"]))

    t0 = time.time()
    fit({**BASE, "data.path": data, "optim.epochs": epochs, "loss.temperature": init, "run.seed": seed}, report)
    return {"scales": scales, "r1": r1, "s": time.time() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="packed dataset folder; made (search_table's corpus) if missing")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--smoke", action="store_true", help="a tiny corpus in a temporary folder, 2 epochs, 1 seed")
    a = p.parse_args()
    if a.smoke:
        with tempfile.TemporaryDirectory(prefix="vlp-optc-") as tmp:
            a.data, a.epochs, a.seeds = str(Path(tmp) / "data"), 2, [0]
            _measure(a, SMOKE_DATA)
    elif not a.data:
        p.error("--data is required (or --smoke)")
    else:
        _measure(a, DATA)


def _measure(a: argparse.Namespace, corpus: dict[str, int]) -> None:
    if not Path(a.data).exists():
        from vlp_sweep.data.synth import synthesize

        synthesize(a.data, **corpus)
    import vlp_sweep

    print(f"vlp_sweep from {Path(vlp_sweep.__file__).parent}; data {a.data}; {a.epochs} epochs; seeds {a.seeds}")
    print(f"{'init':9s} {'seed':>4s} {'start':>7s} {'ep1':>7s} {'ep2':>7s} {'end':>7s} {'R@1 best':>9s} "
          f"{'R@1 end':>8s} {'s':>5s}")
    for name, init in INITS.items():
        best = []
        for seed in a.seeds:
            r = run(a.data, init, seed, a.epochs)
            start = min(1 / (0.01 if init == "log(100)" else float(init)), 100.0)
            sc = r["scales"]
            print(f"{name:9s} {seed:4d} {start:7.2f} {sc[0]:7.2f} {sc[1]:7.2f} {sc[-1]:7.2f} {max(r['r1']):9.2f} "
                  f"{r['r1'][-1]:8.2f} {r['s']:5.0f}", flush=True)
            best.append(max(r["r1"]))
        mean = sum(best) / len(best)
        sd = math.sqrt(sum((b - mean) ** 2 for b in best) / max(len(best) - 1, 1))
        print(f"{name:9s} mean best R@1 over seeds {mean:.2f} (sd {sd:.2f})", flush=True)


if __name__ == "__main__":
    main()

"""Search efficiency at equal compute: does TPE + ASHA find the best of the plan's options with a fraction of
the epochs that random search spends? A tabular benchmark: every configuration of a small A-E space was
trained once with the real trainer for the full budget, dev t2v R@1 recorded after every epoch
(search_table.py, cached in benchmarks/data/search_table.json); searches are then replayed against that
table, so dozens of trials per method and seed cost seconds instead of CPU-hours.

Methods, each over several search seeds, at the same total epochs trained:
  (a) tpe+asha   the tool's searcher (vlp_sweep.sweep.optuna_search.OptunaSearcher: PRUNED / COMPLETE with
                 the best value, per-epoch intermediate values) with its default TPE settings, and Ray's
                 own ASHAScheduler deciding at every epoch;
  (a0) the same before issue 12 item 1: every trial told COMPLETE with its last value (Ray's OptunaSearch);
  (b) random     random search without early stopping (a W&B random or grid sweep);
  (c) random+asha.
The replay runs trials the way Tune does: `max_concurrent` at once, one epoch per trial per tick, each
result to the searcher and the scheduler, a freed slot filled by the next suggestion.

    python benchmarks/bench_search.py                 # 10 seeds, 480 epochs (30 full trials' worth)
    python benchmarks/bench_search.py --smoke         # 2 seeds, small budget (CI)
    python benchmarks/search_table.py                 # (re)build the table: ~25 CPU-minutes
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from search_table import EPOCHS, METRIC, SPACE, build, config_key

from vlp_sweep.space import parse_space
from vlp_sweep.sweep.optuna_search import OptunaSearcher

TABLE = Path(__file__).parent / "data" / "search_table.json"
GRACE, REDUCTION = 2, 2  # ASHA as the shipped quickstart runs it: rungs at epochs 2, 4, 8, 16


class LastValueSearcher(OptunaSearcher):
    """Before item 1: Ray's OptunaSearch told every finished trial COMPLETE with its last reported value."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        ft = self.log.get(trial_id)
        if ft is not None and not ft.state.is_finished() and result:
            self.log.study.tell(ft.number, float(result[self.metric]))


def spec(alg: str, seed: int) -> Any:
    search_alg = {"type": "optuna", "seed": seed} if alg == "tpe" else {"type": "random", "seed": seed}
    return parse_space({"name": "bench", "base": {"data.path": "unused", "optim.epochs": EPOCHS},
                        "search": {k: {"choice": v} for k, v in SPACE.items()}, "search_alg": search_alg,
                        "scheduler": {"type": "none"}, "metric": METRIC, "wandb": {"mode": "disabled"}})


class _Trial:
    def __init__(self, trial_id: str):
        self.trial_id = trial_id


def replay(searcher: Any, asha: bool, rows: dict[str, list[float]], budget: int,
           concurrency: int) -> list[float]:
    """Best value found so far after each epoch spent (index = epochs spent - 1)."""
    sched = ASHAScheduler(time_attr="epoch", metric=METRIC, mode="max", max_t=EPOCHS, grace_period=GRACE,
                          reduction_factor=REDUCTION) if asha else None
    running: dict[str, list[Any]] = {}  # tune id -> [table key, epochs done], in start order
    curve: list[float] = []
    best, n = float("-inf"), 0
    while len(curve) < budget:
        while len(running) < concurrency:
            tid = f"t{n:04d}"
            n += 1
            running[tid] = [config_key(searcher.suggest(tid)), 0]
            if sched:
                sched.on_trial_add(None, _Trial(tid))  # type: ignore[arg-type]
        for tid in list(running):
            key, done = running[tid][0], running[tid][1] + 1
            running[tid][1] = done
            result = {METRIC: rows[key][done - 1], "epoch": done}
            best = max(best, result[METRIC])
            curve.append(best)
            stop = sched.on_trial_result(None, _Trial(tid), result) == TrialScheduler.STOP if sched else False
            if not stop:  # as Tune: the result a trial is stopped on goes to on_trial_complete only
                searcher.on_trial_result(tid, result)
            if stop or done == EPOCHS:
                if sched:
                    sched.on_trial_complete(None, _Trial(tid), result)  # type: ignore[arg-type]
                searcher.on_trial_complete(tid, result)
                del running[tid]
            if len(curve) >= budget:
                break
    return curve


METHODS = {"(a) tpe+asha": ("tpe", True, OptunaSearcher),
           "(a0) tpe+asha, before item 1": ("tpe", True, LastValueSearcher),
           "(b) random": ("random", False, OptunaSearcher),
           "(c) random+asha": ("random", True, OptunaSearcher)}


def run_all(rows: dict[str, list[float]], seeds: int, budget: int, concurrency: int) -> dict[str, list[list[float]]]:
    curves: dict[str, list[list[float]]] = {}
    for name, (alg, asha, cls) in METHODS.items():
        curves[name] = [replay(cls(spec(alg, s), None, f"bench-{s}"), asha, rows, budget, concurrency)
                        for s in range(seeds)]
    return curves


def first_reaching(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def report(curves: dict[str, list[list[float]]], budget: int, optimum: float) -> None:
    marks = sorted({budget // 12, budget // 6, budget // 3, budget // 2, budget})
    print(f"\nbest dev {METRIC} found (mean over seeds) against epochs spent; table optimum {optimum:.1f}")
    print(f"{'method':32s}" + "".join(f"{m:>8d}" for m in marks))
    for name, cs in curves.items():
        print(f"{name:32s}" + "".join(f"{statistics.mean(c[m - 1] for c in cs):8.2f}" for m in marks))
    finals = [c[-1] for c in curves["(b) random"]]
    target = statistics.median(finals)
    print(f"\ntarget: the final best of (b), median over its seeds = {target:.1f} (per seed: "
          f"{', '.join(f'{v:.1f}' for v in finals)})")
    print(f"{'method':32s}{'reached':>9s}{'median epochs':>15s}{'share of budget':>17s}   per seed")
    for name, cs in curves.items():
        hits = [first_reaching(c, target) for c in cs]
        got = sorted(h for h in hits if h is not None)
        med = statistics.median(h if h is not None else float("inf") for h in hits)
        share = f"{med / budget:.2f}" if med != float("inf") else "-"
        print(f"{name:32s}{len(got):>5d}/{len(cs):<3d}{med:>15}{share:>17s}   "
              f"{' '.join(str(h) if h else '-' for h in hits)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=30 * EPOCHS, help="total epochs per search")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--table", default=str(TABLE))
    p.add_argument("--smoke", action="store_true")
    a = p.parse_args()
    seeds, budget = (2, 6 * EPOCHS) if a.smoke else (a.seeds, a.budget)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    table = build(Path(a.table), workers=2)
    rows = table["rows"]
    print(f"table: {len(rows)} configurations x {table['epochs']} epochs of the real trainer "
          f"({table['train_s'] / 60:.0f} CPU-min of training, {table.get('wall_s', 0) / 60:.0f} min wall); space: "
          + json.dumps(table["space"]))
    t0 = time.time()
    curves = run_all(rows, seeds, budget, a.concurrency)
    report(curves, budget, max(max(v) for v in rows.values()))
    print(f"\n{seeds} seeds x {len(METHODS)} methods, budget {budget} epochs, {a.concurrency} trials at once, "
          f"ASHA grace {GRACE} reduction {REDUCTION}; replay {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

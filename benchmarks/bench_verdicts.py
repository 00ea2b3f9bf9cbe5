"""Are the confirmation stage's verdicts calibrated? Confirm tables simulated with a known truth
(``vlp_sweep/report/verdicts/replication_sim.py``: seed, signer and query effects on each query's rank, sized like the
quickstart's confirm table), judged by today's two-level bootstrap (``seed_stats.paired_over_seeds``) and by
the seed-level verdict (``replication.compare_seeds``), at 2, 3 and 5 seeds per side.

Per scenario, method and seeds per side:
    FPR      the share of "better" verdicts when A and B are equal (must be at most 5 %)
    reject   the share of "better" or "worse" verdicts then (a calibrated two-sided 5 % test: about 5 %)
    cover    the share of 95 % intervals that hold the true difference (0)
    power    the share of "better" verdicts when A is truly 5 R@1 points better
    seed SD  the mean over tables of the pooled seed-to-seed SD of the metric (the confirm tables': 2-3.5)

"these signers" is ``compare_seeds(..., over="queries")``: the verdict for new queries and seeds of the test
split's own signers; its truth is the difference given the drawn configuration x signer terms, so its FPR is
the share of "better" among tables where that truth is <= 0, and its coverage is of that truth (its
reject rate is not shown: that truth is not 0).

    python benchmarks/bench_verdicts.py                 # 1000 tables per cell; 2-5 minutes on 2 shared cores
    python benchmarks/bench_verdicts.py --sims 300      # quicker
    python benchmarks/bench_verdicts.py --smoke         # a few tables per cell: that it runs
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from vlp_sweep.report.stats import Ranks
from vlp_sweep.report.verdicts import replication, seed_stats
from vlp_sweep.report.verdicts.replication_sim import SCENARIOS, Scenario, draw_pair, population_r1, shift_for

EFFECT = 5.0  # the true difference of the power column, in R@1 points
Verdict = Callable[[list[Ranks], list[Ranks], Scenario, int], tuple[str, float, float]]


@dataclass
class Cell:
    """Counts of one row of the table."""

    tables: int = 0
    better: int = 0
    rejected: int = 0
    covered: int = 0
    null_tables: int = 0  # tables whose truth is <= 0 (all of them for a verdict over new signers)
    false_better: int = 0
    power_tables: int = 0
    power_better: int = 0
    seed_sd: list[float] = field(default_factory=list)


def new_verdict(metric: str, over: str = "signers", resamples: int = 300) -> Verdict:
    def judge(a: list[Ranks], b: list[Ranks], sc: Scenario, i: int) -> tuple[str, float, float]:
        v = replication.compare_seeds(a, b, metric, sc.signers(), over=over, resamples=resamples, seed=i)
        return v.verdict, v.low, v.high
    return judge


def old_verdict(metric: str, resamples: int) -> Verdict:
    def judge(a: list[Ranks], b: list[Ranks], sc: Scenario, i: int) -> tuple[str, float, float]:
        r = seed_stats.paired_over_seeds(a, b, metric, resamples, seed=i)
        return replication.verdict_word(r.diff, r.p, metric), r.low, r.high
    return judge


def _pooled_sd(a: list[Ranks], b: list[Ranks], metric: str) -> float:
    from vlp_sweep.report.stats import metric_from_ranks

    m = [np.array([float(metric_from_ranks(metric, r)) for r in side]) for side in (a, b)]
    return math.sqrt((np.var(m[0], ddof=1) + np.var(m[1], ddof=1)) / 2)


def run_cell(sc: Scenario, seeds: int, judge: Verdict, metric: str, sims: int, power: bool, conditional: bool,
             rng: np.random.Generator) -> Cell:
    """``sims`` null tables (and as many with A truly EFFECT points better when ``power``) judged by ``judge``."""
    cell = Cell()
    for i in range(sims):
        a, b, by_signer = draw_pair(sc, seeds, 0.0, rng)
        truth = population_r1(sc, 0.0, by_signer[0]) - population_r1(sc, 0.0, by_signer[1]) if conditional else 0.0
        word, low, high = judge(a, b, sc, i)
        cell.tables += 1
        cell.better += word == replication.BETTER
        cell.rejected += word in (replication.BETTER, replication.WORSE)
        cell.covered += bool(low <= truth <= high)
        cell.null_tables += truth <= 0
        cell.false_better += truth <= 0 and word == replication.BETTER
        cell.seed_sd.append(_pooled_sd(a, b, metric))
    if power:
        shift = shift_for(sc, EFFECT)
        for i in range(sims):
            a, b, _ = draw_pair(sc, seeds, shift, rng)
            cell.power_tables += 1
            cell.power_better += judge(a, b, sc, sims + i)[0] == replication.BETTER
    return cell


def _share(k: int, n: int) -> str:
    return f"{k / n:.3f}" if n else "-"


def row(scenario: str, metric: str, method: str, seeds: int, cell: Cell, conditional: bool) -> str:
    """One line of the table (no reject rate for a verdict whose truth is not 0)."""
    reject = "-" if conditional else _share(cell.rejected, cell.tables)
    return (f"| {scenario} | {metric} | {method} | {seeds} | {_share(cell.false_better, cell.null_tables)} | "
            f"{reject} | {_share(cell.covered, cell.tables)} | "
            f"{_share(cell.power_better, cell.power_tables)} | {np.mean(cell.seed_sd):.2f} |")


def plan(args: argparse.Namespace) -> list[tuple[str, str, str, Verdict, bool, bool, int]]:
    """(scenario, metric, method, judge, power, conditional, sims) per block of rows."""
    out: list[tuple[str, str, str, Verdict, bool, bool, int]] = []
    for name, sc in SCENARIOS.items():
        out.append((name, "t2v_R1", "seed-level (new)", new_verdict("t2v_R1"), True, False, args.sims))
        if sc.signer_ids:
            out.append((name, "t2v_R1", "seed-level, these signers", new_verdict("t2v_R1", "queries"), True, True,
                        args.sims))
        out.append((name, "t2v_R1", "paired_over_seeds (old)", old_verdict("t2v_R1", args.old_resamples), False,
                    False, args.sims))
    medr_sims = max(2, args.sims // 4)
    out.append(("quickstart", "t2v_MedR", "seed-level (new)", new_verdict("t2v_MedR", resamples=args.medr_resamples),
                False, False, medr_sims))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=1000, help="tables per cell (MedR: a quarter)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2, 3, 5], help="seeds per side")
    ap.add_argument("--old-resamples", type=int, default=500, help="bootstrap draws of the old method")
    ap.add_argument("--medr-resamples", type=int, default=300, help="bootstrap draws of the new method for MedR")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="4 tables per cell, 50 bootstrap draws: that it runs")
    args = ap.parse_args()
    if args.smoke:
        args.sims, args.old_resamples, args.medr_resamples = 4, 50, 50
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    print(f"{args.sims} tables per cell (MedR: {max(2, args.sims // 4)}); power: A truly +{EFFECT:g} R@1; "
          f"verdicts at alpha 0.05, two-sided")
    print("| scenario | metric | method | seeds/side | FPR (better) | reject | cover | power | seed SD |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, metric, method, judge, power, conditional, sims in plan(args):
        for seeds in args.seeds:
            cell = run_cell(SCENARIOS[name], seeds, judge, metric, sims, power, conditional, rng)
            print(row(name, metric, method, seeds, cell, conditional), flush=True)
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

"""Statistics over seeds and queries for the confirmation stage (pure numpy; see ``stats.py`` for one run).

A confirmed configuration has S training runs (seeds), each evaluated on the same N test queries. Its
number is the mean over seeds of the metric. Two things make it uncertain: which seeds were drawn, and
which queries. The two-level bootstrap resamples both in each draw: S seeds with replacement, then N
queries with replacement, the same query draw for every seed (the queries are one shared test set, so a
hard query is hard for every seed; resampling them per seed would understate the query part).

- ``seed_query_interval``: percentile interval of the mean over seeds.
- ``paired_over_seeds``: configuration A minus B on the same query draw (paired over queries), the seeds
  of A and of B drawn independently (seed k of A has nothing to do with seed k of B), pooled over seeds;
  two-sided p from the bootstrap distribution and the probability of improvement (the share of draws
  in which A is better, ties counting half).
- ``holm``: Holm's step-down adjustment of p-values for K comparisons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlp_sweep.metric_names import MODE
from vlp_sweep.report.stats import LEVEL, RESAMPLES, SEED, Interval, Ranks, metric_from_ranks, two_sided_p

_MAX_CELLS = 1 << 22  # query indices held at once per block of draws


@dataclass(frozen=True)
class SeedComparison:
    """A minus B, each the mean over its seeds on the same test queries."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    p_improve: float  # share of draws in which A beats B in the metric's direction (ties count half)
    resamples: int
    n_queries: int
    seeds_a: int
    seeds_b: int


def _per_seed_draws(runs: Sequence[Ranks], metric: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``[S, B]``: each seed's metric on each query draw (one draw of N queries shared by every seed)."""
    n = len(runs[0])
    out = np.empty((len(runs), resamples))
    rows = max(1, _MAX_CELLS // n)
    for start in range(0, resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, resamples - start), n))
        for s, r in enumerate(runs):
            out[s, start:start + len(idx)] = metric_from_ranks(metric, r.take(idx))
    return out


def _seed_means(draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``[B]``: per draw, the mean over S seeds drawn with replacement."""
    s, b = draws.shape
    pick = rng.integers(0, s, size=(b, s))
    return draws[pick, np.arange(b)[:, None]].mean(axis=1)


def _check(runs: Sequence[Ranks]) -> None:
    if not runs:
        raise ValueError("need at least one run")
    if len({len(r) for r in runs}) != 1:
        raise ValueError(f"runs differ in their number of queries: {sorted({len(r) for r in runs})}")


def seed_query_interval(runs: Sequence[Ranks], metric: str, resamples: int = RESAMPLES, level: float = LEVEL,
                        seed: int = SEED) -> Interval:
    """Mean over seeds of ``metric`` with a two-level (seeds, then queries) percentile bootstrap interval.
    With one seed it is the query bootstrap alone (``method`` says which)."""
    _check(runs)
    rng = np.random.default_rng(seed)
    dist = _seed_means(_per_seed_draws(runs, metric, resamples, rng), rng)
    lo, hi = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2])
    est = float(np.mean([metric_from_ranks(metric, r) for r in runs]))
    method = "bootstrap over seeds and queries" if len(runs) > 1 else "bootstrap over queries (one seed)"
    return Interval(est, float(lo), float(hi), level, len(runs[0]), method)


def paired_over_seeds(a: Sequence[Ranks], b: Sequence[Ranks], metric: str, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = SEED) -> SeedComparison:
    """A minus B (means over seeds) on the same query draws; seeds resampled within each side."""
    _check([*a, *b])
    rng = np.random.default_rng(seed)
    draws = _per_seed_draws([*a, *b], metric, resamples, rng)  # one query draw shared by both sides
    dist = _seed_means(draws[:len(a)], rng) - _seed_means(draws[len(a):], rng)
    va = float(np.mean([metric_from_ranks(metric, r) for r in a]))
    vb = float(np.mean([metric_from_ranks(metric, r) for r in b]))
    lo, hi = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2])
    sign = 1.0 if MODE.get(metric, "max") == "max" else -1.0
    better = float(np.mean(sign * dist > 0) + 0.5 * np.mean(dist == 0))
    return SeedComparison(metric, va, vb, va - vb, float(lo), float(hi), two_sided_p(dist), better, resamples,
                          len(a[0]), len(a), len(b))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest p times (K - i + 1), made
    monotone and capped at 1. Rejecting where the adjusted p < alpha controls the family-wise error."""
    order = np.argsort(pvalues, kind="stable")
    k = len(pvalues)
    out = [0.0] * k
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (k - i) * float(pvalues[j])))
        out[j] = running
    return out

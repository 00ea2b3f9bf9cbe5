"""Confidence intervals and comparisons of retrieval metrics from per-query ranks (pure numpy).

A retrieval metric is a function of the per-query ranks (``R@k = 100 * mean(rank <= k)``, MedR,
MeanR, and their means over the two directions). Its uncertainty over the choice of evaluation
queries is estimated by the bootstrap: draw the N queries with replacement ``resamples`` times and
recompute the metric. Query ``i`` is caption ``i`` (t2v) and clip ``i`` (v2t), so one draw of
indices resamples both directions together.

- ``intervals``: percentile intervals of one trial's metrics.
- ``paired``: trial A minus trial B on the *same* resampled queries (their difficulties cancel,
  which makes the comparison much sharper than two separate intervals); the two-sided p-value is
  read off the bootstrap distribution of the difference.
- ``one_sample``: a trial against a fixed number (a baseline known only by its metrics).
- ``mean_interval``: a Student-t interval of a mean over trials (per-option effects).

Everything is seeded: the same ranks and seed give the same numbers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from vlp_sweep.metric_names import MODE, RECALL_KS, RETRIEVAL_METRICS

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
ALPHA = 0.05
_MAX_CELLS = 1 << 23  # resampled ranks held at once (8M int64 = 64 MB), whatever N is


@dataclass(frozen=True)
class Ranks:
    """Per-query ranks (1 = best) of one evaluation, ``[N]`` (or ``[B, N]`` resampled); ``v2t`` may be
    missing for t2v-only metrics."""

    t2v: np.ndarray
    v2t: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.t2v.ndim < 1 or self.t2v.size == 0:
            raise ValueError(f"ranks must be a non-empty array, got shape {self.t2v.shape}")
        if self.v2t is not None and self.v2t.shape != self.t2v.shape:
            raise ValueError(f"t2v and v2t ranks differ in length: {self.t2v.shape} vs {self.v2t.shape}")

    def __len__(self) -> int:
        return int(self.t2v.shape[-1])

    def take(self, idx: np.ndarray) -> Ranks:
        return Ranks(self.t2v[idx], None if self.v2t is None else self.v2t[idx])


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float = LEVEL
    n: int = 0  # queries (or trials, for mean_interval)
    method: str = "bootstrap"

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Comparison:
    """A minus B (or A minus a fixed value): the difference, its interval, and a two-sided p-value."""

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    resamples: int
    n: int
    method: str  # "paired bootstrap" | "one-sample bootstrap"

    def verdict(self, alpha: float = ALPHA) -> str:
        """'better, p = 0.003' / 'worse, p = …' (A against B in the metric's direction) or
        'not distinguishable (p = 0.41)'."""
        if self.p < alpha and self.diff != 0:
            better = self.diff > 0 if MODE.get(self.metric, "max") == "max" else self.diff < 0
            return f"{'better' if better else 'worse'}, {format_p(self.p, self.resamples)}"
        return f"not distinguishable ({format_p(self.p, self.resamples)})"


def format_p(p: float, resamples: int) -> str:
    floor = 2 / (resamples + 1)  # the smallest p a bootstrap of this size can give
    return f"p < {_sig(floor * 1.0001)}" if p <= floor else f"p = {_sig(p)}"


def _sig(x: float) -> str:
    return f"{x:.2g}" if x < 0.01 else f"{x:.3f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- metrics of ranks


def rank_metric_names() -> tuple[str, ...]:
    """Metrics computable from per-query ranks (all retrieval metrics; not the losses)."""
    return RETRIEVAL_METRICS


def metric_from_ranks(name: str, ranks: Ranks) -> np.ndarray:
    """A retrieval metric over the last axis of ``ranks`` (``[..., N]`` -> ``[...]``), as the trainer
    reports it: R@k in percent, MedR the median (mean of the middle two for even N), MeanR."""
    if name == "rsum":
        return sum((metric_from_ranks(f"{d}_R{k}", ranks) for d in ("t2v", "v2t") for k in RECALL_KS),
                   np.zeros(ranks.t2v.shape[:-1]))
    if name.startswith("mean_R"):
        return (metric_from_ranks(f"t2v_{name[5:]}", ranks) + metric_from_ranks(f"v2t_{name[5:]}", ranks)) / 2
    direction, _, what = name.partition("_")
    if direction not in ("t2v", "v2t") or name not in RETRIEVAL_METRICS:
        raise ValueError(f"{name!r} is not computable from per-query ranks")
    r = ranks.t2v if direction == "t2v" else ranks.v2t
    if r is None:
        raise ValueError(f"{name} needs v2t ranks")
    if what == "MedR":
        return np.median(r, axis=-1)
    if what == "MeanR":
        return np.mean(r, axis=-1)
    return 100.0 * np.mean(r <= int(what[1:]), axis=-1)


# ---------------------------------------------------------------- bootstrap


def _index_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """``resamples`` rows of ``n`` query indices drawn with replacement, a bounded block at a time."""
    rng = np.random.default_rng(seed)
    rows = max(1, _MAX_CELLS // n)
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n))


def _distribution(fn: Callable[[np.ndarray], dict[str, np.ndarray]], n: int, resamples: int,
                  seed: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for idx in _index_blocks(n, resamples, seed):
        for k, v in fn(idx).items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float64))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _percentiles(dist: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(dist, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def two_sided_p(dist: np.ndarray, null: float = 0.0) -> float:
    """Two-sided bootstrap p-value of ``null`` against a bootstrap distribution (with the +1 correction,
    so it is never 0): twice the smaller tail beyond ``null``."""
    b = dist.size
    below = (np.count_nonzero(dist <= null) + 1) / (b + 1)
    above = (np.count_nonzero(dist >= null) + 1) / (b + 1)
    return float(min(1.0, 2 * min(below, above)))


def intervals(ranks: Ranks, metrics: tuple[str, ...], resamples: int = RESAMPLES, level: float = LEVEL,
              seed: int = SEED) -> dict[str, Interval]:
    """Percentile bootstrap intervals of several metrics of one evaluation (one set of resamples)."""
    dist = _distribution(lambda idx: {m: metric_from_ranks(m, ranks.take(idx)) for m in metrics},
                         len(ranks), resamples, seed)
    out = {}
    for m in metrics:
        lo, hi = _percentiles(dist[m], level)
        out[m] = Interval(float(metric_from_ranks(m, ranks)), lo, hi, level, len(ranks))
    return out


def paired(a: Ranks, b: Ranks, metric: str, resamples: int = RESAMPLES, level: float = LEVEL,
           seed: int = SEED) -> Comparison:
    """A minus B on the same queries, each bootstrap draw applied to both (paired bootstrap)."""
    if len(a) != len(b):
        raise ValueError(f"paired comparison needs the same queries, got {len(a)} and {len(b)}")
    dist = _distribution(lambda idx: {"d": metric_from_ranks(metric, a.take(idx))
                                      - metric_from_ranks(metric, b.take(idx))}, len(a), resamples, seed)["d"]
    va, vb = float(metric_from_ranks(metric, a)), float(metric_from_ranks(metric, b))
    lo, hi = _percentiles(dist, level)
    return Comparison(metric, va, vb, va - vb, lo, hi, two_sided_p(dist), resamples, len(a), "paired bootstrap")


def one_sample(a: Ranks, value: float, metric: str, resamples: int = RESAMPLES, level: float = LEVEL,
               seed: int = SEED) -> Comparison:
    """A against a fixed number (no per-query ranks on the other side): interval of A - value."""
    dist = _distribution(lambda idx: {"d": metric_from_ranks(metric, a.take(idx)) - value}, len(a),
                         resamples, seed)["d"]
    va = float(metric_from_ranks(metric, a))
    lo, hi = _percentiles(dist, level)
    return Comparison(metric, va, float(value), va - value, lo, hi, two_sided_p(dist), resamples, len(a),
                      "one-sample bootstrap")


# ---------------------------------------------------------------- means over trials


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (numeric CDF + bisection; no SciPy)."""
    if not 0.5 <= q < 1 or df < 1:
        raise ValueError(f"need 0.5 <= q < 1 and df >= 1, got q={q}, df={df}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        t = np.linspace(0.0, x, 20001)
        pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(t * t / df))
        return 0.5 + float(np.sum((pdf[1:] + pdf[:-1]) / 2) * (t[1] - t[0]))

    lo, hi = 0.0, 1.0
    while cdf(hi) < q:  # heavy tails at small df: grow the bracket
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


def mean_interval(values: np.ndarray | list[float], level: float = LEVEL) -> Interval:
    """Mean of per-trial values with a Student-t interval (NaN bounds for a single trial)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, level, 0, "t")
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, math.nan, math.nan, level, 1, "t")
    half = t_quantile((1 + level) / 2, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, level, int(v.size), "t")

"""The variance parts of a seed-level comparison (``replication.py``): what the draw of the test split adds
to the seeds' spread, with signers as clusters, signers held fixed, or queries as the units.

All seeds of a configuration share one test split, so what two configurations do differently on these
signers and queries is in no seed spread. Its variance is that of the paired per-query difference over
signer clusters (CR2, Bell & McCaffrey 2002) minus the query noise private to each seed, which the seed
spread already holds (the residual mean square of the seed x query table over N); floored at 0. MedR is no
mean over queries: its part comes from a two-stage bootstrap (signers, then queries within each drawn one).

- ``query_scores``: per-query contributions whose mean is a metric (None for MedR).
- ``design``: signer ids -> the sampling design (clusters, strata or queries).
- ``signer_variance``: the split's share of the variance of a signed sum of seed means, its df, and the
  private noise (a floor under the seed part).
- ``cr2_variance``, ``stratified_variance``, ``bm_df``, ``satterthwaite``: the pieces, tested by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlp_sweep.metric_names import RECALL_KS, RETRIEVAL_METRICS
from vlp_sweep.report.stats import Ranks, metric_from_ranks

__all__ = ["OVER", "Design", "SignerPart", "bm_df", "check_runs", "cr2_variance", "design", "query_scores",
           "satterthwaite", "seed_metrics", "signer_variance", "stratified_variance"]

OVER = ("signers", "queries")  # what the verdict generalises to when the split has signer ids


# ---------------------------------------------------------------- per-query scores and clusters


def query_scores(metric: str, ranks: Ranks) -> np.ndarray | None:
    """``[N]`` per-query contributions whose mean is ``metric_from_ranks(metric, ranks)``; None for MedR."""
    if metric.endswith("MedR"):
        return None
    if metric == "rsum":
        return sum((_direction_scores(f"{d}_R{k}", ranks) for d in ("t2v", "v2t") for k in RECALL_KS),
                   np.zeros(len(ranks)))
    if metric.startswith("mean_R"):
        return (_direction_scores(f"t2v_{metric[5:]}", ranks) + _direction_scores(f"v2t_{metric[5:]}", ranks)) / 2
    return _direction_scores(metric, ranks)


def _direction_scores(metric: str, ranks: Ranks) -> np.ndarray:
    if metric not in RETRIEVAL_METRICS:
        raise ValueError(f"{metric!r} is not computable from per-query ranks")
    direction, _, what = metric.partition("_")
    r = ranks.t2v if direction == "t2v" else ranks.v2t
    if r is None:
        raise ValueError(f"{metric} needs v2t ranks")
    return r.astype(np.float64) if what == "MeanR" else 100.0 * (r <= int(what[1:]))


@dataclass(frozen=True)
class Design:
    """How the test queries were drawn: ``codes`` (signer of each query, 0..G-1) or None (queries are the
    units); ``over`` "signers" (clusters: the verdict speaks for new signers) or "queries" (strata: new
    queries of these signers)."""

    codes: np.ndarray | None
    labels: list[str]
    over: str = "signers"

    @property
    def n_signers(self) -> int | None:
        return len(self.labels) or None

    @property
    def clustered(self) -> bool:
        return self.codes is not None and self.over == "signers" and len(self.labels) > 1


def design(signers: Sequence[object] | np.ndarray | None, n: int, over: str) -> Design:
    """Signer ids -> the design (codes 0..G-1 and labels), or no signers."""
    if over not in OVER:
        raise ValueError(f"over must be one of {OVER}, got {over!r}")
    if signers is None:
        return Design(None, [], over)
    ids = np.asarray([str(s) for s in signers])
    if ids.shape != (n,):
        raise ValueError(f"need one signer id per query: {n} queries, got {ids.size} ids")
    labels, codes = np.unique(ids, return_inverse=True)
    return Design(codes.astype(np.int64), [str(x) for x in labels], over)


def check_runs(runs: Sequence[Ranks], side: str) -> None:
    if not runs:
        raise ValueError(f"{side}: need at least one run")
    if len({len(r) for r in runs}) != 1:
        raise ValueError(f"{side}: runs differ in their number of queries: {sorted({len(r) for r in runs})}")


# ---------------------------------------------------------------- variance parts


def seed_metrics(runs: Sequence[Ranks], metric: str) -> np.ndarray:
    return np.array([float(metric_from_ranks(metric, r)) for r in runs])


def _private_noise(scores: np.ndarray) -> float:
    """Variance of one seed's metric due to query-level noise private to that seed: the residual mean
    square of the ``[S, N]`` seed x query table over N (two-way ANOVA without replication)."""
    s, n = scores.shape
    if s < 2 or n < 2:
        return 0.0
    resid = scores - scores.mean(axis=0) - scores.mean(axis=1, keepdims=True) + scores.mean()
    return float(np.sum(resid**2) / ((s - 1) * (n - 1)) / n)


def cr2_variance(values: np.ndarray, codes: np.ndarray | None) -> float:
    """Cluster-robust (CR2) variance of ``mean(values)``: each cluster's residual total scaled by
    ``1/sqrt(1 - n_g/N)`` (its leverage). One query per cluster gives ``var(values, ddof=1)/N``."""
    n = values.size
    if codes is None:
        return float(np.var(values, ddof=1) / n) if n > 1 else 0.0
    sizes = np.bincount(codes).astype(np.float64)
    totals = np.bincount(codes, values - values.mean())
    keep = sizes < n  # a single cluster has no between-cluster variance to estimate
    return float(np.sum(totals[keep] ** 2 / (1 - sizes[keep] / n)) / n**2)


def stratified_variance(values: np.ndarray, codes: np.ndarray) -> float:
    """Variance of ``mean(values)`` with the signers fixed (strata) and queries drawn within each:
    ``sum_g n_g s_g^2 / N^2``, ``s_g^2`` the within-signer variance (a lone query contributes 0)."""
    sizes = np.bincount(codes).astype(np.float64)
    means = np.bincount(codes, values) / sizes
    within = np.bincount(codes, (values - means[codes]) ** 2)  # = (n_g - 1) s_g^2
    return float(np.sum(within[sizes > 1] * sizes[sizes > 1] / (sizes[sizes > 1] - 1)) / values.size**2)


def bm_df(sizes: np.ndarray, rho: float) -> float:
    """Bell-McCaffrey degrees of freedom of the CR2 variance of a mean over clusters of ``sizes``, under a
    working model with intra-cluster correlation ``rho``: ``tr(K)^2 / ||K||_F^2`` (G - 1 for equal sizes)."""
    n = np.asarray(sizes, dtype=np.float64)
    total = n.sum()
    if n.size < 2:
        return math.nan
    if np.all(n == n[0]) or n.size > 2000:
        return float(n.size - 1)
    b = np.diag(n) - np.outer(n, n) / total  # 1_g' M 1_h, M the centring projection
    c = 1 / np.sqrt(1 - n / total)
    k = ((1 - rho) * b + rho * (b @ b)) * np.outer(c, c)
    return float(np.trace(k) ** 2 / np.sum(k**2))


def _icc(values: np.ndarray, codes: np.ndarray) -> float:
    """One-way ANOVA estimate of the intra-cluster correlation of ``values`` (floored at 0)."""
    sizes = np.bincount(codes).astype(np.float64)
    g, n = sizes.size, values.size
    if g < 2 or n <= g:
        return 0.0
    means = np.bincount(codes, values) / sizes
    msb = float(np.sum(sizes * (means - values.mean()) ** 2) / (g - 1))
    msw = float(np.sum((values - means[codes]) ** 2) / (n - g))
    n0 = (n - np.sum(sizes**2) / n) / (g - 1)
    between = max(0.0, (msb - msw) / n0)
    return between / (between + msw) if between + msw > 0 else 0.0


def _query_variance(values: np.ndarray, design: Design) -> tuple[float, float]:
    """(variance of ``mean(values)`` over the draw of the test split, its df) for the design."""
    n, codes = values.size, design.codes
    if codes is None:
        return cr2_variance(values, None), float(n - 1)
    if not design.clustered:
        return stratified_variance(values, codes), float(max(1, n - codes.max() - 1))
    return cr2_variance(values, codes), bm_df(np.bincount(codes), _icc(values, codes))


@dataclass(frozen=True)
class SignerPart:
    """The signer/query draw's share of the variance (beyond the seed spread), its df, and the private
    per-seed query noise over the seeds (sum over sides of noise / S: a floor under the seed part)."""

    var: float
    df: float
    noise: float


def _signer_part(per_seed: list[np.ndarray], signs: list[float], design: Design) -> SignerPart:
    """The variance of the per-query signed sum of seed means over the draw of the split, minus each side's
    private noise over its seeds (which the seed part already holds), floored at 0."""
    values = np.sum([sign * sc.mean(axis=0) for sign, sc in zip(signs, per_seed)], axis=0)
    noise = float(sum(_private_noise(sc) / sc.shape[0] for sc in per_seed))
    var, df = _query_variance(values, design)
    return SignerPart(max(0.0, var - noise), df, noise)


def _bootstrap_index(design: Design, n: int, rng: np.random.Generator) -> np.ndarray:
    """One draw: signers with replacement, then queries with replacement within each drawn signer (with
    ``over="queries"`` the signers stay and only their queries are drawn; no signers: queries)."""
    if design.codes is None:
        return rng.integers(0, n, n)
    members = [np.flatnonzero(design.codes == g) for g in range(len(design.labels))]
    picked = rng.integers(0, len(members), len(members)) if design.clustered else range(len(members))
    return np.concatenate([members[g][rng.integers(0, members[g].size, members[g].size)] for g in picked])


def _bootstrap_noise(draws: np.ndarray) -> float:
    """Private noise of one seed's metric from ``[S, B]`` draws: mean variance minus mean covariance."""
    s = draws.shape[0]
    if s < 2:
        return 0.0
    cov = np.cov(draws)
    return float(np.mean(np.diag(cov)) - (cov.sum() - np.trace(cov)) / (s * (s - 1)))


def _signer_part_bootstrap(sides: list[Sequence[Ranks]], signs: list[float], metric: str, design: Design,
                           resamples: int, seed: int) -> SignerPart:
    """The same part for a metric that is no mean over queries (MedR), from a two-stage bootstrap (signers,
    then queries within them): the variance of the signed sum of seed means over the draws, minus each
    side's private noise over its seeds."""
    rng = np.random.default_rng(seed)
    n = len(sides[0][0])
    draws = [np.empty((len(runs), resamples)) for runs in sides]
    for b in range(resamples):
        idx = _bootstrap_index(design, n, rng)
        for side, runs in zip(draws, sides):
            side[:, b] = [float(metric_from_ranks(metric, r.take(idx))) for r in runs]
    total = float(np.var(np.sum([sign * d.mean(axis=0) for sign, d in zip(signs, draws)], axis=0), ddof=1))
    noise = float(sum(_bootstrap_noise(d) / d.shape[0] for d in draws))
    if design.codes is None:
        df = float(n - 1)
    else:
        df = bm_df(np.bincount(design.codes), 0.0) if design.clustered else float(n - len(design.labels))
    return SignerPart(max(0.0, total - noise), df, noise)


def signer_variance(sides: list[Sequence[Ranks]], signs: list[float], metric: str, design: Design,
                     resamples: int, seed: int) -> SignerPart:
    scores = [[query_scores(metric, r) for r in runs] for runs in sides]
    if any(s is None for side in scores for s in side):
        return _signer_part_bootstrap(sides, signs, metric, design, resamples, seed)
    return _signer_part([np.stack([s for s in side if s is not None]) for side in scores], signs, design)


def satterthwaite(parts: list[tuple[float, float]]) -> tuple[float, float]:
    """(sum of variance parts, Welch-Satterthwaite df); parts are (variance, df), zero parts dropped."""
    live = [(v, d) for v, d in parts if v > 0 and d > 0]
    total = sum(v for v, _ in live)
    if total <= 0:
        return 0.0, math.inf
    return total, total**2 / sum(v**2 / d for v, d in live)

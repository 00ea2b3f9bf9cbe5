"""Seed-level verdicts for the confirmation stage: the seed is the unit of replication, signers are clusters.

A confirmed configuration has S runs (seeds), each evaluated on the same N test queries; its number is the
mean over seeds of the metric. A second lab would draw new seeds and, ideally, new signers; so the verdict
"A is better than B" must hold over both draws. The estimator is the difference of seed means
``d = mean_s m_A[s] - mean_s m_B[s]``; its variance has two parts:

- **Seeds.** ``s_A^2/S_A + s_B^2/S_B``, the sample variances of the per-seed metrics (Welch). Each seed's
  metric also carries the query-level noise that is private to that seed (which queries it happened to get
  right), so this term already holds that noise, with S - 1 degrees of freedom per side.
- **Signers (or queries).** All seeds share one test split, so what the configurations do differently on
  these signers and queries (an A-by-signer interaction) is in no seed spread. It is the variance of the
  paired per-query difference ``delta_i`` (A's mean over seeds minus B's, on query i) over signer clusters
  (CR2 cluster-robust variance, Bell & McCaffrey 2002), minus the private per-seed noise that the seed
  term already counts (the residual mean square of the seed x query table, divided by S N); floored at 0.
  Its degrees of freedom are Bell-McCaffrey's (about n_signers - 1 for equal signers, fewer when one signer
  holds most queries). Without signer ids every query is its own cluster (N - 1 degrees of freedom).

``t = d / sqrt(V)`` with Welch-Satterthwaite degrees of freedom over the three parts gives the p-value and
the interval (V is floored at the private noise over the seeds: seeds that agree better than their own
query noise allows are luck, not precision). With one seed on a side there is no seed spread: the verdict is
"too few seeds", with the number of seeds per side that would detect the observed difference. A's and B's
seeds are taken as independent draws; where the stage gives both the same seed numbers and the two
configurations are alike, their runs correlate and the test is conservative.

``over="queries"`` keeps the signers fixed (strata: queries drawn within each signer, N - G degrees of
freedom): the verdict then speaks for new queries and seeds of these signers only, and says so.

The calibration (false-positive rate <= 5 % at 2, 3 and 5 seeds per side, under seed spreads and signer
effects like the confirm tables') is ``benchmarks/bench_verdicts.py`` and ``tests/report/test_replication.py``.

Metrics that are means over queries (R@k, MeanR, mean_R*, rsum) use exact per-query scores. MedR is not
such a mean: its signer term comes from a two-stage bootstrap (signers, then queries within each drawn
signer), the private noise from the same draws (per-seed variance minus the covariance between seeds).

- ``compare_seeds``: A against B: difference, interval, raw p, verdict, seeds needed.
- ``with_holm``: the same comparisons with Holm-adjusted p-values and verdicts (raw p kept).
- ``mean_over_seeds``: one configuration's mean over seeds with its interval over seeds and signers.
- ``per_signer``: one configuration's metric per signer (queries, mean, min and max over seeds).
- ``seeds_needed`` (``SeedVerdict.seeds_to_detect``) and ``seeds_sentence``: how many seeds per side would
  detect a difference, and what the seeds can say, in words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from vlp_sweep.metric_names import MODE, RECALL_KS, RETRIEVAL_METRICS
from vlp_sweep.report.seed_stats import holm
from vlp_sweep.report.stats import ALPHA, LEVEL, RESAMPLES, SEED, Ranks, metric_from_ranks

__all__ = ["BETTER", "NOT_DISTINGUISHABLE", "POWER", "TOO_FEW", "WORSE", "SeedInterval", "SeedVerdict",
           "SignerRow", "bm_df", "compare_seeds", "cr2_variance", "mean_over_seeds", "per_signer", "query_scores",
           "seeds_needed", "seeds_sentence", "stratified_variance", "verdict_word", "with_holm"]

BETTER, WORSE, NOT_DISTINGUISHABLE, TOO_FEW = "better", "worse", "not distinguishable", "too few seeds"
POWER = 0.8  # the power at which seeds_needed counts
MAX_SEEDS = 200  # seeds_needed gives up beyond this
OVER = ("signers", "queries")  # what the verdict generalises to when the split has signer ids


@dataclass(frozen=True)
class SeedVerdict:
    """A minus B, each the mean over its seeds on the same test queries, with a seed-level verdict.

    ``low``/``high``/``p``/``df``/``se`` are NaN when the verdict is "too few seeds". ``var_seeds`` and
    ``var_signers`` are the two parts of ``se**2`` (``se**2`` is their sum, floored at the seeds' private
    query noise). ``p`` is raw; ``p_holm`` and the verdict from it come from ``with_holm``.
    """

    metric: str
    a: float
    b: float
    diff: float
    low: float
    high: float
    p: float
    df: float
    se: float
    verdict: str
    seeds_a: int
    seeds_b: int
    n_queries: int
    n_signers: int | None  # None: no signer ids (queries are the units)
    seed_sd: float  # pooled SD over seeds of the per-seed metric (NaN with one seed per side)
    var_seeds: float
    var_signers: float
    df_signers: float  # degrees of freedom of var_signers (Bell-McCaffrey over signers, or N - 1)
    level: float = LEVEL
    alpha: float = ALPHA
    over: str = "signers"
    p_holm: float | None = None

    def units(self) -> str:
        """What the verdict is over: "2 vs 2 seeds, 3 signers as clusters (200 queries)"."""
        return f"{self.seeds_a} vs {self.seeds_b} seeds, {_who(self.n_signers, self.over, self.n_queries)}"

    def seeds_to_detect(self, power: float = POWER) -> int | None:
        """Seeds per side that would detect ``diff`` at the observed seed spread (``seeds_needed``); None when
        there is no difference, no spread to go by, or no number of seeds would do it."""
        if self.diff == 0 or not math.isfinite(self.seed_sd):
            return None
        return seeds_needed(self.diff, self.seed_sd, self.var_signers, self.df_signers, alpha=self.alpha,
                            power=power)


@dataclass(frozen=True)
class SeedInterval:
    """One configuration's mean over seeds with an interval over seeds and signers (NaN with one seed)."""

    metric: str
    estimate: float
    low: float
    high: float
    df: float
    seeds: int
    n_queries: int
    n_signers: int | None
    level: float = LEVEL
    over: str = "signers"

    def units(self) -> str:
        """What the interval is over: "2 seeds, 3 signers as clusters (200 queries)"."""
        return f"{self.seeds} seed{'s' * (self.seeds != 1)}, {_who(self.n_signers, self.over, self.n_queries)}"


def _who(n_signers: int | None, over: str, n_queries: int) -> str:
    if not n_signers:
        return f"{n_queries} queries (no signer ids)"
    if n_signers == 1:
        return f"1 signer ({n_queries} queries)"
    how = "as clusters" if over == "signers" else "held fixed"
    return f"{n_signers} signers {how} ({n_queries} queries)"


@dataclass(frozen=True)
class SignerRow:
    """One signer's metric of one configuration: mean, min and max over its seeds."""

    signer: str
    queries: int
    mean: float
    low: float
    high: float


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
class _Design:
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


def _design(signers: Sequence[object] | np.ndarray | None, n: int, over: str) -> _Design:
    """Signer ids -> the design (codes 0..G-1 and labels), or no signers."""
    if over not in OVER:
        raise ValueError(f"over must be one of {OVER}, got {over!r}")
    if signers is None:
        return _Design(None, [], over)
    ids = np.asarray([str(s) for s in signers])
    if ids.shape != (n,):
        raise ValueError(f"need one signer id per query: {n} queries, got {ids.size} ids")
    labels, codes = np.unique(ids, return_inverse=True)
    return _Design(codes.astype(np.int64), [str(x) for x in labels], over)


def _check(runs: Sequence[Ranks], side: str) -> None:
    if not runs:
        raise ValueError(f"{side}: need at least one run")
    if len({len(r) for r in runs}) != 1:
        raise ValueError(f"{side}: runs differ in their number of queries: {sorted({len(r) for r in runs})}")


# ---------------------------------------------------------------- variance parts


def _seed_metrics(runs: Sequence[Ranks], metric: str) -> np.ndarray:
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


def _query_variance(values: np.ndarray, design: _Design) -> tuple[float, float]:
    """(variance of ``mean(values)`` over the draw of the test split, its df) for the design."""
    n, codes = values.size, design.codes
    if codes is None:
        return cr2_variance(values, None), float(n - 1)
    if not design.clustered:
        return stratified_variance(values, codes), float(max(1, n - codes.max() - 1))
    return cr2_variance(values, codes), bm_df(np.bincount(codes), _icc(values, codes))


@dataclass(frozen=True)
class _SignerPart:
    """The signer/query draw's share of the variance (beyond the seed spread), its df, and the private
    per-seed query noise over the seeds (sum over sides of noise / S: a floor under the seed part)."""

    var: float
    df: float
    noise: float


def _signer_part(per_seed: list[np.ndarray], signs: list[float], design: _Design) -> _SignerPart:
    """The variance of the per-query signed sum of seed means over the draw of the split, minus each side's
    private noise over its seeds (which the seed part already holds), floored at 0."""
    values = np.sum([sign * sc.mean(axis=0) for sign, sc in zip(signs, per_seed)], axis=0)
    noise = float(sum(_private_noise(sc) / sc.shape[0] for sc in per_seed))
    var, df = _query_variance(values, design)
    return _SignerPart(max(0.0, var - noise), df, noise)


def _bootstrap_index(design: _Design, n: int, rng: np.random.Generator) -> np.ndarray:
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


def _signer_part_bootstrap(sides: list[Sequence[Ranks]], signs: list[float], metric: str, design: _Design,
                           resamples: int, seed: int) -> _SignerPart:
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
    return _SignerPart(max(0.0, total - noise), df, noise)


def _signer_variance(sides: list[Sequence[Ranks]], signs: list[float], metric: str, design: _Design,
                     resamples: int, seed: int) -> _SignerPart:
    scores = [[query_scores(metric, r) for r in runs] for runs in sides]
    if any(s is None for side in scores for s in side):
        return _signer_part_bootstrap(sides, signs, metric, design, resamples, seed)
    return _signer_part([np.stack([s for s in side if s is not None]) for side in scores], signs, design)


def _satterthwaite(parts: list[tuple[float, float]]) -> tuple[float, float]:
    """(sum of variance parts, Welch-Satterthwaite df); parts are (variance, df), zero parts dropped."""
    live = [(v, d) for v, d in parts if v > 0 and d > 0]
    total = sum(v for v, _ in live)
    if total <= 0:
        return 0.0, math.inf
    return total, total**2 / sum(v**2 / d for v, d in live)


# ---------------------------------------------------------------- verdicts


def verdict_word(diff: float, p: float, metric: str, alpha: float = ALPHA) -> str:
    """"better"/"worse" (A against B in the metric's direction) when ``p < alpha`` and the difference is
    not 0, else "not distinguishable"; NaN p: "too few seeds". A tie is never "worse"."""
    if math.isnan(p):
        return TOO_FEW
    if p >= alpha or diff == 0:
        return NOT_DISTINGUISHABLE
    return BETTER if (diff > 0) == (MODE.get(metric, "max") == "max") else WORSE


def _difference(ma: np.ndarray, mb: np.ndarray) -> tuple[float, float, float]:
    """(mean A, mean B, A - B), the difference exactly 0 when the two means are equal up to rounding."""
    a, b = float(ma.mean()), float(mb.mean())
    tie = math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a, b, 0.0 if tie else a - b


def _seed_parts(ma: np.ndarray, mb: np.ndarray) -> list[tuple[float, float]]:
    return [(float(np.var(m, ddof=1)) / m.size, float(m.size - 1)) for m in (ma, mb)]


def _pooled_sd(ma: np.ndarray, mb: np.ndarray) -> float:
    dof = (ma.size - 1) + (mb.size - 1)
    if dof == 0:
        return math.nan
    return math.sqrt(((ma.size - 1) * np.var(ma, ddof=1 if ma.size > 1 else 0)
                      + (mb.size - 1) * np.var(mb, ddof=1 if mb.size > 1 else 0)) / dof)


def _test(diff: float, var: float, df: float, level: float) -> tuple[float, float, float]:
    """(p, low, high) of a t test of ``diff`` with variance ``var`` and ``df`` degrees of freedom."""
    if var <= 0:
        return (1.0 if diff == 0 else 0.0), diff, diff
    se = math.sqrt(var)
    half = float(sps.t.ppf((1 + level) / 2, df)) * se
    return float(2 * sps.t.sf(abs(diff) / se, df)), diff - half, diff + half


def compare_seeds(a: Sequence[Ranks], b: Sequence[Ranks], metric: str,
                  signers: Sequence[object] | np.ndarray | None = None, *, over: str = "signers",
                  alpha: float = ALPHA, level: float = LEVEL, resamples: int = RESAMPLES,
                  seed: int = SEED) -> SeedVerdict:
    """A minus B with the seed as the unit of replication and signers as clusters (module docstring).

    Args:
        a: configuration A's runs, one per seed, each the per-query ranks on the same test queries.
        b: configuration B's runs (its seeds drawn independently of A's).
        metric: a retrieval metric computable from ranks (``t2v_R1``, ``v2t_MedR``, ``mean_R5``, ...).
        signers: one signer id per query, or None when the split has none (queries are then the units).
        over: with signer ids, "signers" (clusters: the verdict speaks for new signers) or "queries"
            (strata: for new queries of these signers).
        alpha: the level of the verdict (Holm across comparisons: ``with_holm``).
        level: the interval's confidence level.
        resamples: bootstrap draws, used only for MedR.
        seed: the bootstrap's seed.

    Returns:
        The difference of seed means, its interval, the raw two-sided p and the verdict; "too few seeds"
        (NaN interval and p) when either side has one seed (``seeds_to_detect`` then goes by the other side's
        spread).
    """
    _check(a, "A")
    _check(b, "B")
    if len(a[0]) != len(b[0]):
        raise ValueError(f"A and B must share the test queries, got {len(a[0])} and {len(b[0])}")
    design = _design(signers, len(a[0]), over)
    ma, mb = _seed_metrics(a, metric), _seed_metrics(b, metric)
    va, vb, diff = _difference(ma, mb)
    sig = _signer_variance([a, b], [1.0, -1.0], metric, design, resamples, seed)
    if min(ma.size, mb.size) < 2:
        p = low = high = df = se = var_seeds = math.nan
    else:
        seed_parts = _seed_parts(ma, mb)
        var_seeds = seed_parts[0][0] + seed_parts[1][0]
        var, df = _satterthwaite([*seed_parts, (sig.var, sig.df)])
        var = max(var, sig.noise)  # the seeds' spread cannot be below their private query noise
        p, low, high = _test(diff, var, df, level)
        se = math.sqrt(var)
    return SeedVerdict(metric, va, vb, diff, low, high, p, df, se, verdict_word(diff, p, metric, alpha), ma.size,
                       mb.size, len(a[0]), design.n_signers, _pooled_sd(ma, mb), var_seeds, sig.var, sig.df,
                       level, alpha, over)


def with_holm(verdicts: Sequence[SeedVerdict], alpha: float = ALPHA) -> list[SeedVerdict]:
    """The comparisons with Holm-adjusted p-values (``p_holm``) and verdicts from them, in the input order;
    "too few seeds" ones are left out of the family and unchanged. The raw ``p`` is kept."""
    tested = [i for i, v in enumerate(verdicts) if not math.isnan(v.p)]
    out = list(verdicts)
    for i, p in zip(tested, holm([verdicts[i].p for i in tested])):
        v = verdicts[i]
        out[i] = replace(v, p_holm=p, verdict=verdict_word(v.diff, p, v.metric, alpha), alpha=alpha)
    return out


# ---------------------------------------------------------------- one configuration


def mean_over_seeds(runs: Sequence[Ranks], metric: str, signers: Sequence[object] | np.ndarray | None = None, *,
                    over: str = "signers", level: float = LEVEL, resamples: int = RESAMPLES,
                    seed: int = SEED) -> SeedInterval:
    """One configuration's mean over seeds with a t interval over seeds and signers (signers as clusters:
    it describes new signers, not only these); NaN bounds with one seed (no seed spread)."""
    _check(runs, "runs")
    design = _design(signers, len(runs[0]), over)
    m = _seed_metrics(runs, metric)
    est = float(m.mean())
    low = high = df = math.nan
    if m.size >= 2:
        sig = _signer_variance([runs], [1.0], metric, design, resamples, seed)
        var, df = _satterthwaite([(float(np.var(m, ddof=1)) / m.size, float(m.size - 1)), (sig.var, sig.df)])
        _, low, high = _test(est, max(var, sig.noise), df, level)
    return SeedInterval(metric, est, low, high, df, m.size, len(runs[0]), design.n_signers, level, over)


def per_signer(runs: Sequence[Ranks], metric: str, signers: Sequence[object] | np.ndarray) -> list[SignerRow]:
    """One configuration's metric on each signer's queries: mean, min and max over its seeds."""
    _check(runs, "runs")
    design = _design(signers, len(runs[0]), "signers")
    assert design.codes is not None
    rows = []
    for g, label in enumerate(design.labels):
        idx = np.flatnonzero(design.codes == g)
        m = np.array([float(metric_from_ranks(metric, r.take(idx))) for r in runs])
        rows.append(SignerRow(label, int(idx.size), float(m.mean()), float(m.min()), float(m.max())))
    return rows


# ---------------------------------------------------------------- how many seeds


def _power(diff: float, seed_sd: float, seeds: int, var_signers: float, df_signers: float, alpha: float) -> float:
    """Power of the two-sided test at ``seeds`` per side: noncentral t with the Satterthwaite df."""
    part = seed_sd**2 / seeds
    var, df = _satterthwaite([(part, seeds - 1.0), (part, seeds - 1.0), (var_signers, df_signers)])
    if var <= 0:
        return 1.0
    crit = float(sps.t.ppf(1 - alpha / 2, df))
    ncp = abs(diff) / math.sqrt(var)
    upper, lower = float(sps.nct.sf(crit, df, ncp)), float(sps.nct.cdf(-crit, df, ncp))
    if not math.isfinite(upper):  # scipy's nct fails far in the tail (large ncp): the normal limit is exact there
        upper = float(sps.norm.sf(crit - ncp))
    if not math.isfinite(lower):
        lower = float(sps.norm.cdf(-crit - ncp))
    return upper + lower


def seeds_needed(diff: float, seed_sd: float, var_signers: float = 0.0, df_signers: float = math.inf, *,
                 alpha: float = ALPHA, power: float = POWER, max_seeds: int = MAX_SEEDS) -> int | None:
    """The fewest seeds per side (at least 2) at which the test detects ``diff`` with ``power`` (two-sided,
    level ``alpha``), both sides with seed SD ``seed_sd`` and the signer part fixed; None when even
    ``max_seeds`` would not (the signer/query draw alone hides ``diff``: more test signers would help)."""
    if diff == 0 or seed_sd < 0 or not math.isfinite(seed_sd):
        return None
    if _power(diff, seed_sd, max_seeds, var_signers, df_signers, alpha) < power:
        return None
    lo, hi = 2, max_seeds  # power rises with the seeds: bisect for the first that reaches it
    if _power(diff, seed_sd, lo, var_signers, df_signers, alpha) >= power:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _power(diff, seed_sd, mid, var_signers, df_signers, alpha) >= power else (mid, hi)
    return hi


def seeds_sentence(v: SeedVerdict) -> str:
    """What the seeds can and cannot say, in words the report prints ("" when the verdict is better/worse).

    "2 seeds per side cannot separate a +3.00 t2v_R1 difference from seed noise (seed SD 2.10); about 6 seeds
    per side would (80% power)."
    """
    if v.verdict in (BETTER, WORSE):
        return ""
    need = v.seeds_to_detect()
    if v.verdict == TOO_FEW:
        head = (f"No seed-level verdict is possible with {min(v.seeds_a, v.seeds_b)} seed on a side: one run "
                "gives no seed-to-seed spread to judge the difference against")
        if math.isnan(v.seed_sd) or v.diff == 0:
            return head + "; run at least 2 seeds per side (3 or more to have a fair chance of a verdict)."
        return head + f". At the other side's spread (seed SD {v.seed_sd:.2f}), " + _would(v, need)
    if v.diff == 0:
        return f"The two means are equal ({v.a:.2f}): there is no difference to detect."
    seeds = f"{v.seeds_a} vs {v.seeds_b} seeds" if v.seeds_a != v.seeds_b else f"{v.seeds_a} seeds per side"
    what = f"a {v.diff:+.2f} {v.metric} difference"
    if need is None:
        return f"{seeds} cannot separate {what} from the spread of the test split itself: " + _would(v, need)
    if need <= min(v.seeds_a, v.seeds_b):
        return (f"{seeds} did not separate {what} from seed noise (seed SD {v.seed_sd:.2f}, p = {v.p:.2g}), "
                f"although at this spread {need} seeds per side would detect it 4 times in 5.")
    return f"{seeds} cannot separate {what} from seed noise (seed SD {v.seed_sd:.2f}); " + _would(v, need)


def _would(v: SeedVerdict, need: int | None) -> str:
    if need is None:
        more = "more test signers would" if v.n_signers and v.over == "signers" else "a larger test split would"
        return f"no number of seeds would detect a {v.diff:+.2f} difference (80% power); {more}."
    return f"about {need} seeds per side would (80% power)."

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

The variance parts (signers or queries, the private noise, their degrees of freedom; MedR's from a two-stage
bootstrap) are ``seed_variance.py``; this module turns them into verdicts and sentences.

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

from vlp_sweep.metric_names import MODE
from vlp_sweep.report.stats import ALPHA, LEVEL, RESAMPLES, SEED, Ranks, metric_from_ranks
from vlp_sweep.report.verdicts.seed_stats import holm
from vlp_sweep.report.verdicts.seed_variance import check_runs, design, satterthwaite, seed_metrics, signer_variance

__all__ = ["BETTER", "NOT_DISTINGUISHABLE", "POWER", "TOO_FEW", "WORSE", "SeedInterval", "SeedVerdict",
           "SignerRow", "compare_seeds", "mean_over_seeds", "per_signer", "seeds_needed", "seeds_sentence",
           "verdict_word", "with_holm"]

BETTER, WORSE, NOT_DISTINGUISHABLE, TOO_FEW = "better", "worse", "not distinguishable", "too few seeds"
POWER = 0.8  # the power at which seeds_needed counts
MAX_SEEDS = 200  # seeds_needed gives up beyond this


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
    check_runs(a, "A")
    check_runs(b, "B")
    if len(a[0]) != len(b[0]):
        raise ValueError(f"A and B must share the test queries, got {len(a[0])} and {len(b[0])}")
    plan = design(signers, len(a[0]), over)
    ma, mb = seed_metrics(a, metric), seed_metrics(b, metric)
    va, vb, diff = _difference(ma, mb)
    sig = signer_variance([a, b], [1.0, -1.0], metric, plan, resamples, seed)
    if min(ma.size, mb.size) < 2:
        p = low = high = df = se = var_seeds = math.nan
    else:
        seed_parts = _seed_parts(ma, mb)
        var_seeds = seed_parts[0][0] + seed_parts[1][0]
        var, df = satterthwaite([*seed_parts, (sig.var, sig.df)])
        var = max(var, sig.noise)  # the seeds' spread cannot be below their private query noise
        p, low, high = _test(diff, var, df, level)
        se = math.sqrt(var)
    return SeedVerdict(metric, va, vb, diff, low, high, p, df, se, verdict_word(diff, p, metric, alpha), ma.size,
                       mb.size, len(a[0]), plan.n_signers, _pooled_sd(ma, mb), var_seeds, sig.var, sig.df,
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
    check_runs(runs, "runs")
    plan = design(signers, len(runs[0]), over)
    m = seed_metrics(runs, metric)
    est = float(m.mean())
    low = high = df = math.nan
    if m.size >= 2:
        sig = signer_variance([runs], [1.0], metric, plan, resamples, seed)
        var, df = satterthwaite([(float(np.var(m, ddof=1)) / m.size, float(m.size - 1)), (sig.var, sig.df)])
        _, low, high = _test(est, max(var, sig.noise), df, level)
    return SeedInterval(metric, est, low, high, df, m.size, len(runs[0]), plan.n_signers, level, over)


def per_signer(runs: Sequence[Ranks], metric: str, signers: Sequence[object] | np.ndarray) -> list[SignerRow]:
    """One configuration's metric on each signer's queries: mean, min and max over its seeds."""
    check_runs(runs, "runs")
    plan = design(signers, len(runs[0]), "signers")
    assert plan.codes is not None
    rows = []
    for g, label in enumerate(plan.labels):
        idx = np.flatnonzero(plan.codes == g)
        m = np.array([float(metric_from_ranks(metric, r.take(idx))) for r in runs])
        rows.append(SignerRow(label, int(idx.size), float(m.mean()), float(m.min()), float(m.max())))
    return rows


# ---------------------------------------------------------------- how many seeds


def _power(diff: float, seed_sd: float, seeds: int, var_signers: float, df_signers: float, alpha: float) -> float:
    """Power of the two-sided test at ``seeds`` per side: noncentral t with the Satterthwaite df."""
    part = seed_sd**2 / seeds
    var, df = satterthwaite([(part, seeds - 1.0), (part, seeds - 1.0), (var_signers, df_signers)])
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

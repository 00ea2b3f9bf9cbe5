"""Bootstrap statistics against known truths: coverage of intervals at about the nominal rate on ranks
drawn from a known distribution, calibrated paired p-values, and agreement with the trainer's metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlp_sweep.metric_names import RETRIEVAL_METRICS
from vlp_sweep.report import stats
from vlp_sweep.train.metrics import ranks_to_metrics


def test_metrics_from_ranks_equal_the_trainers() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):  # odd and even N: MedR of an even count is the mean of the middle two
        t2v, v2t = rng.integers(1, n + 1, n), rng.integers(1, n + 1, n)
        want = ranks_to_metrics(t2v, v2t)
        for m in RETRIEVAL_METRICS:
            got = float(stats.metric_from_ranks(m, stats.Ranks(t2v, v2t)))
            assert got == pytest.approx(want[m], abs=1e-9), m


def test_losses_are_not_computable_from_ranks() -> None:
    with pytest.raises(ValueError, match="not computable"):
        stats.metric_from_ranks("eval_loss", stats.Ranks(np.array([1, 2])))
    with pytest.raises(ValueError, match="needs v2t"):
        stats.metric_from_ranks("rsum", stats.Ranks(np.array([1, 2])))


def test_intervals_cover_the_true_recall_at_about_the_nominal_rate() -> None:
    # rank - 1 ~ Geometric(p): true R@k = 1 - (1 - p)^k (p = 0.15: R@1 15, R@5 56, R@10 80, like a
    # mid-training model). 400 replications: the standard error of a 95 % coverage is about 1.1 points.
    p, n, reps = 0.15, 300, 400
    truth = {f"t2v_R{k}": 100 * (1 - (1 - p) ** k) for k in (1, 5, 10)}
    rng = np.random.default_rng(1)
    hits = dict.fromkeys(truth, 0)
    for r in range(reps):
        ranks = stats.Ranks(rng.geometric(p, n))
        ivs = stats.intervals(ranks, tuple(truth), resamples=1000, seed=r)
        for m, v in truth.items():
            hits[m] += ivs[m].covers(v)
    coverage = {m: h / reps for m, h in hits.items()}
    for m, c in coverage.items():
        assert 0.91 <= c <= 0.985, (m, coverage)


def test_paired_p_values_are_calibrated_under_the_null_and_sharp_under_a_difference() -> None:
    # Two models with the same quality whose ranks share each query's difficulty (correlated, as two
    # trials on one eval split are): a 5 % test should reject about 5 % of the time.
    rng = np.random.default_rng(2)
    n, reps, rejected = 200, 300, 0
    for r in range(reps):
        difficulty = rng.exponential(8, n)
        a = 1 + rng.poisson(difficulty)
        b = 1 + rng.poisson(difficulty)
        rejected += stats.paired(stats.Ranks(a), stats.Ranks(b), "t2v_R5", resamples=500, seed=r).p < 0.05
    assert 0.01 <= rejected / reps <= 0.10, rejected / reps
    difficulty = rng.exponential(8, n)
    good, bad = 1 + rng.poisson(difficulty * 0.3), 1 + rng.poisson(difficulty)
    c = stats.paired(stats.Ranks(good), stats.Ranks(bad), "t2v_R5")
    assert c.p < 0.01 and c.low > 0 and c.verdict().startswith("better, p")
    assert stats.paired(stats.Ranks(bad), stats.Ranks(good), "t2v_R5").verdict().startswith("worse, p")
    lower_better = stats.paired(stats.Ranks(good), stats.Ranks(bad), "t2v_MedR")
    assert lower_better.diff < 0 and lower_better.verdict().startswith("better")


def test_pairing_sharpens_the_comparison_of_correlated_trials() -> None:
    rng = np.random.default_rng(3)
    difficulty = rng.exponential(10, 300)
    a, b = 1 + rng.poisson(difficulty * 0.8), 1 + rng.poisson(difficulty)
    paired = stats.paired(stats.Ranks(a), stats.Ranks(b), "t2v_R10")
    ia = stats.intervals(stats.Ranks(a), ("t2v_R10",))["t2v_R10"]
    ib = stats.intervals(stats.Ranks(b), ("t2v_R10",))["t2v_R10"]
    unpaired_width = math.hypot(ia.high - ia.low, ib.high - ib.low)
    assert paired.high - paired.low < 0.8 * unpaired_width


def test_identical_trials_are_not_distinguishable() -> None:
    r = stats.Ranks(np.arange(1, 41))
    c = stats.paired(r, r, "t2v_R1")
    assert c.p == 1.0 and c.diff == 0 and c.verdict() == "not distinguishable (p = 1)"


def test_one_sample_against_a_number() -> None:
    ranks = stats.Ranks(np.array([1] * 30 + [50] * 70))  # R@1 = 30 %
    assert stats.one_sample(ranks, 60.0, "t2v_R1").verdict().startswith("worse, p <")
    assert stats.one_sample(ranks, 30.5, "t2v_R1").verdict().startswith("not distinguishable")


def test_bootstrap_is_seeded_and_bounded_in_memory() -> None:
    rng = np.random.default_rng(4)
    r = stats.Ranks(rng.integers(1, 100, 5000), rng.integers(1, 100, 5000))
    a = stats.intervals(r, ("rsum", "t2v_MedR"), resamples=300, seed=7)
    b = stats.intervals(r, ("rsum", "t2v_MedR"), resamples=300, seed=7)
    assert a == b
    assert a["rsum"].low <= a["rsum"].estimate <= a["rsum"].high


def test_t_quantiles_and_mean_interval() -> None:
    for df, q in ((1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042)):
        assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=2e-3)
    assert stats.t_quantile(0.975, 10_000) == pytest.approx(1.960, abs=2e-3)
    iv = stats.mean_interval([1.0, 2.0, 3.0])
    assert iv.estimate == 2.0 and iv.low == pytest.approx(2 - 4.303 / math.sqrt(3), abs=1e-3)
    assert math.isnan(stats.mean_interval([5.0]).low)
    # Coverage of the t interval on normal samples of 3.
    rng = np.random.default_rng(5)
    hits = sum(stats.mean_interval(rng.normal(10, 2, 3)).covers(10) for _ in range(2000))
    assert 0.93 <= hits / 2000 <= 0.97

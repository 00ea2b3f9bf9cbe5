"""The expected best of n trials (Dodge et al., 2019) against brute force: every ordered n-tuple of draws with
replacement, each equally likely."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

from vlp_sweep.report.expected_max import expected_best


def _brute(values: list[float], n: int,
           best: Callable[[tuple[float, ...]], float] = max) -> tuple[float, float]:
    bests = np.array([best(draw) for draw in itertools.product(values, repeat=n)])
    return float(bests.mean()), float(bests.std())


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 3.0, 3.0], [2.5, 9.0, 0.5, 7.0, 7.0],
                                    [4.0, 4.0, 4.0]])
def test_mean_and_std_equal_the_brute_force_over_all_draws(values: list[float]) -> None:
    mean, std = expected_best(values, "max", n_max=4)
    for n in range(1, 5):
        want_mean, want_std = _brute(values, n)
        assert mean[n - 1] == pytest.approx(want_mean, abs=1e-12)
        assert std[n - 1] == pytest.approx(want_std, abs=1e-9)


def test_lower_is_better_takes_the_minimum() -> None:
    values = [12.0, 3.0, 7.0, 3.0, 30.0]
    mean, std = expected_best(values, "min", n_max=3)
    for n in (1, 2, 3):
        want_mean, want_std = _brute(values, n, min)
        assert (mean[n - 1], std[n - 1]) == pytest.approx((want_mean, want_std), abs=1e-9)


def test_simulation_on_a_larger_sample() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(20, 5, 25)
    mean, std = expected_best(values, "max")
    draws = rng.choice(values, size=(200_000, 10)).max(axis=1)
    assert mean[9] == pytest.approx(draws.mean(), abs=0.05) and std[9] == pytest.approx(draws.std(), abs=0.05)
    # One draw is the plain mean; the curve never falls and stays below the largest value.
    assert mean[0] == pytest.approx(values.mean())
    assert np.all(np.diff(mean) >= -1e-12) and mean[-1] <= values.max()


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        expected_best([], "max")

"""The distribution value objects: one contract for all of them, then each one's own math."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from vlp_sweep.space.distributions import (
    U_HIGH,
    U_LOW,
    Beta,
    Choice,
    Grid,
    Int,
    LogNormal,
    LogUniform,
    Normal,
    QLogUniform,
    Setting,
    Uniform,
)
from vlp_sweep.space.entries import from_dict

SMALL = Setting("small", (("model.d_model", 64), ("model.heads", 4)))
LARGE = Setting("large", (("model.d_model", 128), ("model.heads", 8)))
EVERY = [
    Choice((32, 48, 64)), Choice(("none", "hcl"), (0.75, 0.25)), Choice((SMALL, LARGE)), Grid((False, True)),
    Grid((SMALL, LARGE)), Uniform(0.0, 0.4), Uniform(0.0, 0.2, 0.05), LogUniform(1e-4, 3e-3), Int(2, 32),
    Int(0, 200, 50), Int(2, 32, log=True), QLogUniform(16, 256, 16), QLogUniform(1e-4, 1e-2, 1e-4),
    Normal(0.2, 0.05), Normal(100, 10, 5), LogNormal(-7.0, 0.5), Beta(2.0, 5.0), Beta(1.0, 1.0, 0.1),
]


@pytest.mark.parametrize("d", EVERY, ids=[d.describe() for d in EVERY])
def test_round_trips_through_plain_data(d: object) -> None:
    entry = d.to_dict()  # type: ignore[attr-defined]
    assert from_dict(entry) == d
    assert from_dict(eval(repr(entry))) == d  # plain data only: lists, dicts, numbers, strings


SHAPED = [d for d in EVERY if getattr(d, "shaped", False) and not d.discrete]


@pytest.mark.parametrize("d", SHAPED, ids=[d.describe() for d in SHAPED])
def test_every_drawn_value_lies_between_the_checked_points(d: object) -> None:
    # Validation puts check_points() through the trainer: every value a trial can draw must lie between them.
    lo, hi = d.check_points()  # type: ignore[attr-defined]
    rng = random.Random(0)
    for u in [U_LOW, U_HIGH] + [rng.uniform(U_LOW, U_HIGH) for _ in range(300)]:
        v = d.value_at(u)  # type: ignore[attr-defined]
        assert lo <= v <= hi and (isinstance(v, int) == d.integer)  # type: ignore[attr-defined]


BAD = [
    (lambda: Uniform(0.3, 0.1), "low < high must hold, but got low=0.3, high=0.1"),
    (lambda: Uniform(0.1, 0.1), "to fix a value, put it under base"),
    (lambda: Uniform(0.0, float("inf")), "finite numbers"),
    (lambda: Uniform(0.05, 0.4, 0.1), "low=0.05 is not a multiple of step 0.1"),
    (lambda: LogUniform(0.0, 1.0), "loguniform needs low > 0, but got low=0"),
    (lambda: Int(1, 8.5), "int bounds must be integers, but got high=8.5"),  # type: ignore[arg-type]
    (lambda: Int(0, 210, 50), "high - low = 210 is not a multiple of step 50"),
    (lambda: Int(0, 8, log=True), "low >= 1"),
    (lambda: Choice(()), "non-empty"),
    (lambda: Choice((0.1, 0.1)), "lists 0.1 twice"),
    (lambda: Choice((1, 2), (0.5, 0.6)), "probabilities must sum to 1, but got sum=1.1"),
    (lambda: Choice((1, 2), (1.0,)), "one number per value, but got 1 for 2 values"),
    (lambda: Choice((SMALL, 3)), "mixes settings"),
    (lambda: Choice((SMALL, Setting("again", SMALL.values))), "set the same values"),
    (lambda: Normal(0.2, 0.0), "sigma > 0 must hold, but got sigma=0"),
    (lambda: Beta(0.0, 1.0), "a > 0 and b > 0 must hold, but got a=0.0, b=1.0"),
    (lambda: QLogUniform(1, 100, -1), "step > 0 must hold, but got step=-1"),
]


@pytest.mark.parametrize(("build", "message"), BAD, ids=[b[1][:40] for b in BAD])
def test_an_impossible_distribution_is_refused_where_it_is_built(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=None) as ei:
        build()  # type: ignore[operator]
    assert message in str(ei.value)


def test_normal_and_lognormal_follow_the_inverse_cdf() -> None:
    ref = statistics.NormalDist(0.2, 0.05)
    for u in (U_LOW, 0.01, 0.3, 0.5, 0.9, U_HIGH):
        assert Normal(0.2, 0.05).value_at(u) == pytest.approx(ref.inv_cdf(u), rel=1e-9)
        assert LogNormal(-7.0, 0.5).value_at(u) == pytest.approx(math.exp(statistics.NormalDist(-7, 0.5).inv_cdf(u)))
    assert Normal(0.2, 0.05).bounds() == pytest.approx((0.2 - 4.753424 * 0.05, 0.2 + 4.753424 * 0.05))


def test_beta_matches_its_cdf() -> None:
    # Beta(2, 1) has CDF x^2, so its inverse CDF is sqrt(u).
    for u in (0.01, 0.25, 0.5, 0.81):
        assert Beta(2.0, 1.0).value_at(u) == pytest.approx(math.sqrt(u), rel=1e-9)


def test_quantised_values_are_rounded_like_wandb() -> None:
    d = Normal(100, 10, 5)  # an int step: ints, as W&B's q_normal with an integer q
    assert d.integer and d.value_at(0.5) == 100 and all(d.value_at(u) % 5 == 0 for u in (0.01, 0.2, 0.7))
    q = QLogUniform(16, 256, 16)
    assert q.check_points() == (16, 256) and q.value_at(0.5) == 64  # sqrt(16 * 256)
    assert Beta(1.0, 1.0, 0.1).value_at(0.34) == 0.3  # no float noise (0.30000000000000004)


def test_weighted_choice_draws_by_its_probabilities() -> None:
    d = Choice(("none", "hcl", "topk"), (0.7, 0.0, 0.3))
    rng = random.Random(1)
    draws = [d.value_at(rng.uniform(U_LOW, U_HIGH)) for _ in range(4000)]
    assert draws.count("hcl") == 0 and abs(draws.count("none") / 4000 - 0.7) < 0.03
    assert d.value_at(U_HIGH) == "topk" and d.value_at(U_LOW) == "none"


def test_coupled_choice_holds_labels_and_sets_every_key_of_a_setting() -> None:
    d = Choice((SMALL, LARGE))
    assert d.coupled and d.options == ("small", "large") and d.setting("large").as_dict() == {
        "model.d_model": 128, "model.heads": 8}
    assert d.to_dict() == {"choice": {"small": {"model.d_model": 64, "model.heads": 4},
                                      "large": {"model.d_model": 128, "model.heads": 8}}}

"""Parameter importance from the trials at one budget (an Optuna study rebuilt with create_trial, PED-ANOVA)."""

from __future__ import annotations

import numpy as np

from vlp_sweep.report.budgets import Point
from vlp_sweep.report.importance import MIN_TRIALS, distribution, param_importance

SEARCH = {"optim.lr": {"loguniform": [1e-4, 1e-2]},
          "loss.hard_negatives": {"choice": ["none", "hcl", "topk"]},
          "loss.hcl_beta": {"uniform": [0.1, 1.0], "when": {"loss.hard_negatives": "hcl"}},
          "data.max_frames": {"int": [16, 64], "step": 16}}


def _points(n: int, seed: int = 0, lower_is_better: bool = False) -> list[Point]:
    """The metric depends on the learning rate only (peak at 1e-3); the other keys are noise."""
    rng = np.random.default_rng(seed)
    points = []
    for i in range(n):
        hn = str(rng.choice(["none", "hcl", "topk"]))
        params = {"optim.lr": float(10 ** rng.uniform(-4, -2)), "loss.hard_negatives": hn,
                  "data.max_frames": int(rng.choice([16, 32, 48, 64]))}
        if hn == "hcl":
            params["loss.hcl_beta"] = float(rng.uniform(0.1, 1.0))
        value = 40 - 15 * (np.log10(params["optim.lr"]) + 3) ** 2 + rng.normal(0, 0.5)
        points.append(Point(f"t{i}", params, float(50 - value if lower_is_better else value)))
    return points


def test_the_key_that_drives_the_metric_ranks_first() -> None:
    imp = param_importance(_points(40), SEARCH, "max")
    assert imp.n_trials == 40 and imp.values
    assert next(iter(imp.values)) == "optim.lr", imp.values
    assert abs(sum(imp.values.values()) - 1) < 1e-6
    low = param_importance(_points(40, lower_is_better=True), SEARCH, "min")  # a lower-is-better metric
    assert next(iter(low.values)) == "optim.lr", low.values


def test_too_few_trials_say_how_many_are_needed() -> None:
    imp = param_importance(_points(MIN_TRIALS - 1), SEARCH, "max")
    assert not imp.values and imp.note == f"needs >= {MIN_TRIALS} trials (have {MIN_TRIALS - 1})"


def test_params_outside_the_space_are_skipped_not_fatal() -> None:
    points = _points(12)
    points[0] = Point("t0", {"optim.lr": 5.0, "loss.hard_negatives": "none"}, 1.0)  # lr out of range
    imp = param_importance(points, SEARCH, "max")
    assert imp.n_trials == 11 and "1 trials skipped" in imp.note


def test_a_conditional_key_drawn_by_few_trials_gets_no_importance() -> None:
    # The quickstart's case: beta drawn by three trials, whose values happen to line up with the metric.
    rng = np.random.default_rng(1)
    points = [Point(f"t{i}", {"optim.lr": float(10 ** rng.uniform(-4, -2)), "loss.hard_negatives": "none",
                              "data.max_frames": 32}, float(rng.normal(10, 1))) for i in range(12)]
    for i, beta in enumerate((0.2, 0.5, 0.9)):
        points[i] = Point(f"t{i}", {**points[i].params, "loss.hard_negatives": "hcl", "loss.hcl_beta": beta},
                          20.0 + 5 * i)
    imp = param_importance(points, SEARCH, "max")
    assert imp.n_trials == 12 and "loss.hcl_beta" not in imp.values
    assert imp.unrated == {"loss.hcl_beta": f"active in 3 trials, needs >= {MIN_TRIALS}"}
    assert abs(sum(imp.values.values()) - 1) < 1e-6
    points[3] = Point("t3", {**points[3].params, "loss.hard_negatives": "hcl", "loss.hcl_beta": 0.4}, 30.0)
    four = param_importance(points, SEARCH, "max")  # rated from four draws on, flagged as rough
    assert "loss.hcl_beta" in four.values and "loss.hcl_beta active in fewer than 10 trials: rough" in four.note


def test_distributions_from_spec_entries() -> None:
    assert distribution({"int": [16, 64], "step": 16}).step == 16
    assert distribution({"loguniform": [1e-4, 1e-2]}).log
    assert distribution({"grid": [True, False]}).choices == (True, False)

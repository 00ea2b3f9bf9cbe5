"""Parameter importance from leaderboard rows (an Optuna study rebuilt with create_trial, PED-ANOVA)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from vlp_sweep.report.importance import MIN_TRIALS, distribution, param_importance

SEARCH = {"optim.lr": {"loguniform": [1e-4, 1e-2]},
          "loss.hard_negatives": {"choice": ["none", "hcl", "topk"]},
          "loss.hcl_beta": {"uniform": [0.1, 1.0], "when": {"loss.hard_negatives": "hcl"}},
          "data.max_frames": {"int": [16, 64], "step": 16}}


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    """The metric depends on the learning rate only (peak at 1e-3); the other keys are noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hn = str(rng.choice(["none", "hcl", "topk"]))
        params = {"optim.lr": float(10 ** rng.uniform(-4, -2)), "loss.hard_negatives": hn,
                  "data.max_frames": int(rng.choice([16, 32, 48, 64]))}
        if hn == "hcl":
            params["loss.hcl_beta"] = float(rng.uniform(0.1, 1.0))
        value = 40 - 15 * (np.log10(params["optim.lr"]) + 3) ** 2 + rng.normal(0, 0.5)
        rows.append({"trial_id": f"t{i}", "params": json.dumps(params), "best_t2v_R1": value,
                     "best_t2v_MedR": 50 - value})
    return pd.DataFrame(rows)


def test_the_key_that_drives_the_metric_ranks_first() -> None:
    imp = param_importance(_rows(40), SEARCH, "t2v_R1", "max")
    assert imp.n_trials == 40 and imp.values
    assert next(iter(imp.values)) == "optim.lr", imp.values
    assert abs(sum(imp.values.values()) - 1) < 1e-6
    low = param_importance(_rows(40), SEARCH, "t2v_MedR", "min")  # a lower-is-better metric
    assert next(iter(low.values)) == "optim.lr", low.values


def test_too_few_trials_say_how_many_are_needed() -> None:
    imp = param_importance(_rows(MIN_TRIALS - 1), SEARCH, "t2v_R1", "max")
    assert not imp.values and imp.note == f"needs >= {MIN_TRIALS} finished trials (have {MIN_TRIALS - 1})"


def test_params_outside_the_space_are_skipped_not_fatal() -> None:
    rows = _rows(12)
    rows.loc[0, "params"] = json.dumps({"optim.lr": 5.0, "loss.hard_negatives": "none"})  # lr out of range
    imp = param_importance(rows, SEARCH, "t2v_R1", "max")
    assert imp.n_trials == 11 and "1 trials skipped" in imp.note


def test_distributions_from_spec_entries() -> None:
    assert distribution({"int": [16, 64], "step": 16}).step == 16
    assert distribution({"loguniform": [1e-4, 1e-2]}).log
    assert distribution({"grid": [True, False]}).choices == (True, False)

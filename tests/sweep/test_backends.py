"""The Ray Tune and Optuna adapters for what item 7 added: shaped distributions, weighted and coupled choices."""

from __future__ import annotations

from typing import Any

import pytest

from vlp_sweep.space import SweepSpec, parse_space
from vlp_sweep.sweep.backends import define_by_run, optuna_distribution, optuna_sampler, param_space

SEARCH: dict[str, Any] = {
    "model_size": {"choice": {"small": {"model.d_model": 64, "model.heads": 4},
                              "large": {"model.d_model": 96, "model.heads": 6}}},
    "model.dropout": {"beta": [2, 5]},
    "optim.lr": {"lognormal": [-7, 0.5]},
    "optim.warmup_steps": {"normal": [40, 5], "step": 5},
    "loss.hard_negatives": {"choice": ["none", "hcl"], "probabilities": [0.5, 0.5]},
    # Active only with hcl; its keys otherwise keep their default (2 layers).
    "arch": {"choice": [{"model": {"video_layers": 1, "text_layers": 1}},
                        {"model.video_layers": 3, "model.text_layers": 3}], "when": {"loss.hard_negatives": "hcl"}},
}


def _spec(**over: Any) -> SweepSpec:
    return parse_space({"name": "x", "search": SEARCH, "search_alg": {"type": "random", "seed": 1},
                        "scheduler": {"type": "none"}, **over})


def _check_trial(spec: SweepSpec, config: dict[str, Any]) -> None:
    """What a trial's config holds is what the trainer gets, and the keys a choice set are recorded."""
    cfg = spec.trial_config(config).flat()
    assert cfg["model.d_model"] == {"small": 64, "large": 96}[config["model_size"]]
    assert (config["model.d_model"], config["model.heads"]) == (cfg["model.d_model"], cfg["model.heads"])
    if config["loss.hard_negatives"] == "hcl":
        assert cfg["model.video_layers"] == (1 if config["arch"].startswith("text_layers=1") else 3)
    else:
        assert cfg["model.video_layers"] == 2  # the choice is inactive: the trainer default
    assert config.get("model.video_layers", 2) == cfg["model.video_layers"]
    assert cfg["optim.warmup_steps"] % 5 == 0 and 15 <= cfg["optim.warmup_steps"] <= 65
    assert cfg["optim.lr"] == config["optim.lr"] and 0 < cfg["model.dropout"] < 1


def _draw(spec: SweepSpec, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` samples of Tune's variant generator (each a pass over the grid) from one seeded random state."""
    import numpy as np
    from ray.tune.search.variant_generator import generate_variants

    rng = np.random.default_rng(seed)
    return [cfg for _ in range(n) for _, cfg in generate_variants(param_space(spec), random_state=rng)]


def test_ray_param_space_draws_shaped_weighted_and_coupled_values() -> None:
    spec = _spec(search={**SEARCH, "aug.speed": {"grid": [0.0, 0.1]}})
    configs = _draw(spec, 40, seed=0)
    assert len(configs) == 80
    for config in configs:
        _check_trial(spec, config)
    negatives = [c["loss.hard_negatives"] for c in configs]
    assert 20 < negatives.count("hcl") < 60 and {c["model_size"] for c in configs} == {"small", "large"}
    assert _draw(spec, 40, seed=0) == configs  # seeded: the same space draws the same values


def test_grid_over_a_coupled_choice() -> None:
    from ray.tune.search.variant_generator import generate_variants

    spec = parse_space({"name": "g", "search": {"model_size": SEARCH["model_size"], "optim.lr": {"grid": [1e-3, 2e-3]}},
                        "search_alg": {"type": "grid"}, "scheduler": {"type": "none"}})
    configs = [cfg for _, cfg in generate_variants(param_space(spec))]
    assert spec.grid_size() == 4 and len(configs) == 4
    assert sorted((c["model_size"], c["model.heads"], c["optim.lr"]) for c in configs) == [
        ("large", 6, 1e-3), ("large", 6, 2e-3), ("small", 4, 1e-3), ("small", 4, 2e-3)]


def test_optuna_models_the_quantile_and_the_trial_gets_the_value() -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = _spec()
    study = optuna.create_study(sampler=optuna_sampler(spec.search_alg))
    for _ in range(40):
        trial = study.ask()
        extra = define_by_run(spec, trial)
        assert extra is not None
        config = {**trial.params, **extra}  # what Ray's OptunaSearch hands the trial
        _check_trial(spec, config)
        u = trial.params["optim.lr"]
        assert trial.distributions["optim.lr"] == FloatDistribution(1e-6, 1 - 1e-6)
        assert trial.user_attrs["optim.lr"] == config["optim.lr"] == spec.search[2].distribution.value_at(u)
        assert isinstance(trial.distributions["model_size"], CategoricalDistribution)
        assert ("arch" in trial.params) == (config["loss.hard_negatives"] == "hcl")  # conditional on the value used
        study.tell(trial, 1.0)


def test_optuna_distribution_holds_every_value_a_trial_records() -> None:
    import optuna

    spec = _spec()
    dists = {k: optuna_distribution(e) for k, e in spec.to_dict()["search"].items()}
    assert dists["model_size"].choices == ("small", "large")
    assert dists["optim.lr"].log and dists["optim.warmup_steps"].step == 1
    for config in _draw(spec, 30, seed=3):
        params = {k: v for k, v in spec.active_params(config).items()}
        optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params}, value=1.0)
    size = spec.search[0]
    assert optuna_distribution(size) == optuna_distribution(size.distribution) == dists["model_size"]
    with pytest.raises(ValueError):
        optuna_distribution({"gaussian": [0, 1]})

"""W&B sweep configs read as they are: conversion to the native space, warnings, errors with lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vlp_sweep.errors import UserError
from vlp_sweep.space import SweepSpec, load_space, parse_space
from vlp_sweep.space.wandb_format import is_wandb
from vlp_sweep.sweep.backends import define_by_run, optuna_sampler, param_space

ROOT = Path(__file__).resolve().parents[2]

SWEEP = """\
name: wb
description: a W&B sweep
program: train.py
command: [python, train.py]
project: sign-vlp
entity: lab
method: bayes
metric: {name: t2v_R5, goal: maximize}
run_cap: 12
early_terminate: {type: hyperband, min_iter: 3, eta: 2}
parameters:
  data:
    parameters:
      path: {value: data/x}
      max_frames: {values: [32, 64]}
  optim:
    parameters:
      lr: {distribution: log_uniform_values, min: 1.0e-4, max: 1.0e-2}
      epochs: {value: 9}
      warmup_steps: {distribution: q_uniform, min: 0, max: 40, q: 20}
  model.dropout: {distribution: uniform, min: 0.1, max: 0.3}
  loss.hard_negatives: {distribution: categorical, values: [none, hcl]}
  loss.topk_k: {min: 2, max: 8}
  loss.hcl_beta: {min: 0.25, max: 1.0}
  aug.speed: {distribution: q_uniform, min: 0.0, max: 0.2, q: 0.1}
  loss.temperature: {distribution: constant, value: 0.05}
"""


def load(tmp_path: Path, text: str) -> SweepSpec:
    p = tmp_path / "sweep.yaml"
    p.write_text(textwrap.dedent(text))
    return load_space(p)


def test_detects_wandb_format() -> None:
    assert is_wandb({"method": "grid", "parameters": {}})
    assert not is_wandb({"search": {}, "method": "grid"})


def test_converts_a_bayes_sweep(tmp_path: Path) -> None:
    s = load(tmp_path, SWEEP)
    assert s.format == "wandb" and s.name == "wb" and s.description == "a W&B sweep"
    assert s.search_alg.type == "optuna" and s.num_samples == 12
    assert (s.metric, s.mode) == ("t2v_R5", "max")
    assert s.base_overrides() == {"data.path": "data/x", "optim.epochs": 9, "loss.temperature": 0.05}
    got = {p.key: p.to_dict() for p in s.search}
    assert got == {
        "data.max_frames": {"choice": [32, 64]},
        "optim.lr": {"loguniform": [1e-4, 1e-2]},
        "optim.warmup_steps": {"int": [0, 40], "step": 20},  # integer bounds and q: an integer key
        "model.dropout": {"uniform": [0.1, 0.3]},
        "loss.hard_negatives": {"choice": ["none", "hcl"]},
        "loss.topk_k": {"int": [2, 8]},  # no distribution, integer min/max: int_uniform
        "loss.hcl_beta": {"uniform": [0.25, 1.0]},  # no distribution, float min/max: uniform
        "aug.speed": {"uniform": [0.0, 0.2], "step": 0.1},
    }
    assert (s.scheduler.type, s.scheduler.grace_period, s.scheduler.reduction_factor, s.scheduler.max_t) == (
        "asha", 3, 2.0, 9)
    assert (s.wandb.project, s.wandb.entity, s.wandb.mode) == ("sign-vlp", "lab", "offline")
    assert any("'program' (line 3)" in w for w in s.warnings) and any("'command'" in w for w in s.warnings)


def test_converted_spec_behaves_like_native(tmp_path: Path) -> None:
    s = load(tmp_path, SWEEP)
    native = parse_space(s.to_dict())
    assert native == s and native.format == "native"
    cfg = s.trial_config({"optim.lr": 1e-3, "loss.hard_negatives": "hcl"})
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.data.path, cfg.loss.temperature) == (1e-3, 9, "data/x", 0.05)


def test_grid_method(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        method: grid
        run_cap: 3
        parameters:
          data.use_siglip: {values: [false, true]}
          model.dropout: {values: [0.4, 0.2]}
          optim.grad_accum: {values: [2, 4]}
        """)
    assert s.search_alg.type == "grid" and all(p.kind == "grid" for p in s.search)
    assert s.grid_size() == 8 and s.num_samples == 1 and s.scheduler.type == "none"
    assert any("run_cap" in w for w in s.warnings)


def test_random_method_without_run_cap_warns(tmp_path: Path) -> None:
    s = load(tmp_path, "method: random\nparameters:\n  model.dropout: {values: [0.1, 0.2]}\n")
    assert s.search_alg.type == "random" and s.num_samples == 10
    assert any("no run_cap" in w for w in s.warnings)


def test_hyperband_max_iter_and_s(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        method: random
        run_cap: 4
        early_terminate: {type: hyperband, max_iter: 27, s: 2, eta: 3}
        parameters:
          optim.epochs: {value: 30}
        """)
    assert (s.scheduler.grace_period, s.scheduler.reduction_factor, s.scheduler.max_t) == (3, 3.0, 27)


def test_missing_goal_follows_the_metric_with_a_warning(tmp_path: Path) -> None:
    s = load(tmp_path, "method: bayes\nmetric: {name: t2v_R1}\nrun_cap: 2\n"
                       "parameters:\n  optim.lr: {value: 0.001}\n")
    assert s.mode == "max" and any("W&B would minimize" in w for w in s.warnings)


def test_native_extras_pass_through(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        method: bayes
        run_cap: 4
        parameters:
          optim.lr: {min: 0.0001, max: 0.01, distribution: log_uniform_values}
        resources: {cpu: 2, gpu: 0.5}
        max_concurrent: 3
        seeds: [0, 1]
        search_alg: {seed: 7, n_startup_trials: 2}
        wandb: {mode: disabled}
        """)
    assert (s.resources.cpu, s.resources.gpu, s.max_concurrent, s.seeds) == (2, 0.5, 3, (0, 1))
    assert (s.search_alg.type, s.search_alg.seed, s.search_alg.n_startup_trials) == ("optuna", 7, 2)
    assert s.wandb.mode == "disabled" and s.warnings == ()


BAD = [
    ("method: hyperopt\nparameters: {}\n", ["method", "grid, random, bayes", "line 1"]),
    ("method: random\nrun_cap: 2\nparameters:\n"
     "  model.dropout: {distribution: normal, mu: 0.2, sigma: 0.1}\n",
     ["parameters.model.dropout", "normal mu 0.2 sigma 0.1", "takes model.dropout in [0, 1)", "rejects -0.27",
      "line 4"]),
    ("method: random\nrun_cap: 2\nparameters:\n  optim.lr: {distribution: log_uniform, min: 1, max: 2, q: 1}\n",
     ["parameters.optim.lr.q", "not used by W&B distribution log_uniform"]),
    ("method: random\nrun_cap: 2\nparameters:\n  optim.lr: {distribution: loguniform, min: 1, max: 2}\n",
     ["parameters.optim.lr.distribution", "unknown W&B distribution", "did you mean"]),
    ("method: bayes\nrun_cap: 2\nparameters:\n"
     "  model.dropout: {values: [0.1, 0.2], probabilities: [0.5, 0.5]}\n",
     ["parameters.model.dropout.probabilities", "method random only"]),
    ("method: random\nrun_cap: 2\nparameters:\n"
     "  model.dropout: {values: [0.1, 0.2], probabilities: [0.5, 0.6]}\n",
     ["parameters.model.dropout", "probabilities must sum to 1, but got sum=1.1", "line 4"]),
    ("method: random\nrun_cap: 2\nparameters:\n  model.dropout: {valeus: [0.1]}\n",
     ["parameters.model.dropout.valeus", "did you mean 'values'"]),
    ("method: random\nrun_cap: 2\nparameters:\n  model.dropout: {distribution: uniform, min: 0.1}\n",
     ["parameters.model.dropout", "needs min and max", "line 4"]),
    ("method: random\nrun_cap: 2\nparameters:\n  optim:\n    parameters:\n      lrr: {value: 0.1}\n",
     ["parameters.optim.lrr", "unknown trainer key", "did you mean 'optim.lr'", "line 6"]),
    ("method: grid\nparameters:\n  model.dropout: {min: 0.1, max: 0.3}\n",
     ["parameters.model.dropout", "search_alg grid needs discrete values", "line 3"]),
    ("method: random\nrun_cap: 2\nparameters:\n  model.dropout: {values: [0.5, 1.0]}\n",
     ["parameters.model.dropout", "rejects 1.0", "line 4"]),
    ("method: random\nrun_cap: 2\nearly_terminate: {type: median}\nparameters: {optim.lr: {value: 0.1}}\n",
     ["early_terminate.type", "hyperband", "line 3"]),
    ("method: random\nrun_cap: 2\nearly_terminate: {type: hyperband}\nparameters: {optim.lr: {value: 0.1}}\n",
     ["early_terminate", "min_iter"]),
    ("method: bayes\nrun_cap: 2\nmetric: {name: t2v_R1, goal: up}\nparameters: {optim.lr: {value: 0.1}}\n",
     ["metric.goal", "maximize or minimize", "line 3"]),
    ("method: bayes\nrun_cap: 2\nmetric: {name: recall}\nparameters: {optim.lr: {value: 0.1}}\n",
     ["metric", "'recall' is not a metric"]),
    ("method: bayes\nrun_cap: 0\nparameters: {optim.lr: {value: 0.1}}\n", ["num_samples", ">= 1", "line 2"]),
    ("method: bayes\nrun_cap: 2\nproject: a\nwandb: {project: b}\nparameters: {optim.lr: {value: 0.1}}\n",
     ["project", "given twice"]),
]


@pytest.mark.parametrize(("text", "parts"), BAD, ids=[b[1][1][:40] for b in BAD])
def test_bad_wandb_sweep(tmp_path: Path, text: str, parts: list[str]) -> None:
    with pytest.raises(UserError) as ei:
        load(tmp_path, text)
    msg = str(ei.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


CORPUS = sorted((Path(__file__).parent / "wandb_configs").glob("*.yaml"))


def _expectation(path: Path) -> str | None:
    """``# expect: ok`` or ``# expect: error: <part of the one-line message>`` on a config's first line."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    return None if first == "# expect: ok" else first.removeprefix("# expect: error: ")


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_real_wandb_configs_validate_or_are_refused_in_one_line(path: Path) -> None:
    """Configs in the shapes people write (taken from public repositories and W&B's docs, parameter names
    changed to the trainer's): each validates and runs trials through both searchers, or is refused
    with the documented line."""
    import optuna

    expected = _expectation(path)
    if expected is not None:
        with pytest.raises(UserError) as ei:
            load_space(path)
        msg = str(ei.value)
        assert "\n" not in msg and expected in msg and ", line " in msg, msg
        return
    s = load_space(path)
    assert s.format == "wandb" and parse_space(s.to_dict()) == s and s.budget()["trials"] >= 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if s.uses_optuna():
        study = optuna.create_study(sampler=optuna_sampler(s.search_alg))
        for _ in range(5):
            t = study.ask()
            s.trial_config({**t.params, **(define_by_run(s, t) or {})})
            study.tell(t, 1.0)
    else:
        from ray.tune.search.variant_generator import generate_variants

        for _, cfg in generate_variants(param_space(s), random_state=0):
            s.trial_config(cfg)


REFUSED = [p for p in CORPUS if _expectation(p) is not None]


@pytest.mark.parametrize("path", REFUSED, ids=[p.stem for p in REFUSED])
def test_refused_configs_exit_2_with_one_line(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.cli import main

    assert main(["validate", str(path), "--no-data"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}, line ") and str(_expectation(path)) in err


def test_corpus_shapes() -> None:
    assert len(CORPUS) >= 24
    texts = "\n".join(p.read_text() for p in CORPUS)
    for dist in ("log_uniform", "q_log_uniform_values", "inv_log_uniform_values", "normal", "q_normal",
                 "log_normal", "q_log_normal", "beta", "q_beta", "q_uniform", "int_uniform", "probabilities"):
        assert f"{dist}" in texts, dist


def test_mapping_values_and_a_display_name(tmp_path: Path) -> None:
    s = load_space(ROOT / "tests" / "sweep" / "wandb_configs" / "10_values_are_mappings.yaml")
    model = s.param("model")
    assert model is not None and model.options[0] == "d_model=128, heads=4, text_layers=2, video_layers=2"
    cfg = s.trial_config({"model": model.options[1], "optim.lr": 3e-4})
    assert (cfg.model.d_model, cfg.model.heads, cfg.model.video_layers) == (256, 8, 4)
    named = load_space(ROOT / "tests" / "sweep" / "wandb_configs" / "09_name_with_slash.yaml")
    assert named.name == "vlp-phase1-warmup-study"
    assert any("'vlp/phase1 warmup study' is a display name: the sweep's folder is runs/vlp-phase1-warmup-study"
               in w for w in named.warnings)
    nothing_left = "name: //\nmethod: random\nrun_cap: 1\nparameters: {optim.lr: {value: 0.1}}\n"
    assert load(tmp_path, nothing_left).name == "sweep"  # the file's stem


def test_every_wandb_distribution_maps_to_the_values_wandb_draws(tmp_path: Path) -> None:
    import math

    s = load(tmp_path, """\
        method: random
        run_cap: 2
        parameters:
          optim.lr: {distribution: log_uniform, min: -9.21, max: -4.61}
          optim.weight_decay: {distribution: inv_log_uniform, min: 2.3, max: 6.9}
          loss.vsepp_weight: {distribution: inv_log_uniform_values, min: 0.1, max: 1.0}
          optim.batch_size: {distribution: q_log_uniform_values, min: 16, max: 256, q: 16}
          loss.topk_k: {distribution: q_log_uniform, min: 0.7, max: 3.5}
          aug.rotation_deg: {distribution: q_uniform, min: 2.5, max: 14, q: 5.0}
          optim.warmup_steps: {distribution: q_normal, mu: 100, sigma: 15, q: 10}
          model.dropout: {distribution: beta, a: 2, b: 5}
          loss.temperature: {distribution: log_normal, mu: -2.66, sigma: 0.3}
        """)
    got = {p.key: p.to_dict() for p in s.search}
    assert got["optim.lr"]["loguniform"] == pytest.approx([math.exp(-9.21), math.exp(-4.61)])
    assert got["optim.weight_decay"]["loguniform"] == pytest.approx([math.exp(-6.9), math.exp(-2.3)])
    assert got["loss.vsepp_weight"] == {"loguniform": [0.1, 1.0]}
    assert got["optim.batch_size"] == {"loguniform": [16, 256], "step": 16}
    assert got["loss.topk_k"]["step"] == 1 and s.param("loss.topk_k").distribution.check_points() == (2, 33)
    assert got["aug.rotation_deg"] == {"uniform": [0.0, 15.0], "step": 5.0}
    assert any("aug.rotation_deg: q_uniform rounds every draw" in w for w in s.warnings)
    assert got["optim.warmup_steps"] == {"normal": [100, 15], "step": 10}
    assert got["model.dropout"] == {"beta": [2, 5]} and got["loss.temperature"] == {"lognormal": [-2.66, 0.3]}


def test_shipped_wandb_example() -> None:
    s = load_space(ROOT / "search_spaces" / "wandb_example.yaml")
    assert s.format == "wandb" and s.search_alg.type == "optuna" and s.scheduler.type == "asha"
    assert {"data.max_frames", "optim.lr", "loss.hard_negatives"} <= {p.key for p in s.search}
    assert s.budget()["trials"] == 6

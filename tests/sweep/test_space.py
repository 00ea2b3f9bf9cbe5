"""Search spaces: parsing, errors (key + line), Ray/Optuna conversion, trials, size, identity, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from vlp_sweep.cli import main
from vlp_sweep.config import TrainConfig
from vlp_sweep.errors import UserError
from vlp_sweep.space import SweepSpec, check_data, load_space, parse_space
from vlp_sweep.space.distributions import LogUniform
from vlp_sweep.sweep.backends import define_by_run, optuna_sampler, param_space, variant_generator

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml"))

SPACE = """\
name: t
base:
  data.path: DATA
  optim: {epochs: 6}
search:
  data.max_frames: {choice: [32, 48, 64]}
  optim.lr: {loguniform: [1e-4, 3e-3]}
  model.dropout: {uniform: [0.0, 0.4]}
  optim.warmup_steps: {int: [0, 200], step: 50}
  loss.hard_negatives: {choice: [none, hcl, vsepp, topk]}
  loss.hcl_beta: {uniform: [0.1, 1.0], when: {loss.hard_negatives: hcl}}
  loss.topk_k: {int: [2, 16], log: true, when: {loss.hard_negatives: [topk]}}
search_alg: {type: optuna, seed: 0, n_startup_trials: 4}
scheduler: {type: asha, grace_period: 2, reduction_factor: 2}
metric: t2v_R1
num_samples: 8
"""


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def load(tmp_path: Path, text: str) -> SweepSpec:
    return load_space(write(tmp_path, text))


@pytest.fixture
def spec(tmp_path: Path) -> SweepSpec:
    return load(tmp_path, SPACE)


# ---------------------------------------------------------------- parsing and defaults


def test_parses_and_resolves_defaults(spec: SweepSpec) -> None:
    assert spec.name == "t" and spec.format == "native"
    assert [p.key for p in spec.search][:2] == ["data.max_frames", "optim.lr"]
    lr = spec.search[1]
    assert lr.distribution == LogUniform(1e-4, 3e-3)  # 1e-4 is a float, not YAML 1.1's string
    assert spec.mode == "max" and spec.seeds == (0,) and spec.max_concurrent == 2
    assert spec.scheduler.max_t == 6  # from base optim.epochs
    a = spec.search_alg
    assert (a.multivariate, a.group, a.constant_liar, a.n_ei_candidates) == (True, True, True, 24)
    assert spec.wandb.mode == "offline" and spec.baseline is None and spec.warnings == ()


def test_defaults_follow_the_space(tmp_path: Path) -> None:
    s = load(tmp_path, "search: {optim.lr: {loguniform: [1.0e-4, 1.0e-2]}}\nmax_concurrent: 1\n")
    assert s.name == "space"  # the file stem
    assert s.num_samples == 10 and s.search_alg.n_startup_trials == 5
    assert s.search_alg.constant_liar is False and s.search_alg.group is False  # serial, unconditional
    assert s.metric == "t2v_R1" and s.mode == "max" and s.scheduler.max_t == TrainConfig().optim.epochs
    g = load(tmp_path, "search: {model.dropout: {grid: [0.1, 0.2]}}\nsearch_alg: {type: grid}\n")
    assert g.num_samples == 1 and g.search_alg.to_dict() == {"type": "grid"}


def test_mode_defaults_from_the_metric(tmp_path: Path) -> None:
    assert load(tmp_path, "metric: t2v_MedR\n").mode == "min"
    s = load(tmp_path, "metric: t2v_R1\nmode: min\n")
    assert s.mode == "min" and any("t2v_R1" in w for w in s.warnings)


def test_base_values_are_normalised_and_seed_moves_to_seeds(tmp_path: Path) -> None:
    s = load(tmp_path, "base: {loss.temperature: 'log(100)', optim: {lr: 1}, run.seed: 7, run.out_dir: x}\n")
    assert s.base_overrides() == {"loss.temperature": 0.01, "optim.lr": 1.0, "run.out_dir": "x"}
    assert s.seeds == (7,) and any("run.out_dir" in w for w in s.warnings)


def test_nested_search_form(tmp_path: Path) -> None:
    s = load(tmp_path, "search:\n  optim:\n    lr: {loguniform: [1.0e-4, 1.0e-2]}\n")
    assert [p.key for p in s.search] == ["optim.lr"]


# ---------------------------------------------------------------- errors: one line, the key, the line number

BAD = [
    # (yaml, substrings the message must contain)
    ("search: [1, 2\n", ["malformed YAML", "line"]),
    ("name: !!python/object/apply:os.system ['true']\n", ["unsupported YAML tag", "python/object", "line 1"]),
    ("base: {}\nbase: {}\n", ["appears twice", "line 2"]),
    ("name: x\nserach: {}\n", ["serach", "did you mean 'search'", "line 2"]),
    ("search_alg:\n  type: optuna\n  sed: 0\n", ["search_alg.sed", "did you mean 'seed'", "line 3"]),
    ("search_alg: {type: random, n_startup_trials: 3}\n", ["search_alg.n_startup_trials", "type random"]),
    ("scheduler:\n  type: asha\n  grace: 1\n", ["scheduler.grace", "grace_period", "line 3"]),
    ("wandb: {mode: offline, projet: x}\n", ["wandb.projet", "did you mean 'project'"]),
    ("base:\n  optim.lrr: 0.1\n",
     ["base.optim.lrr", "unknown trainer key", "did you mean 'optim.lr'", "line 2"]),
    ("base:\n  optim:\n    epochs: six\n", ["base.optim.epochs", "expected int", "line 3"]),
    ("search:\n  optim:\n    lrr: {uniform: [0.1, 0.2]}\n",
     ["search.optim.lrr", "did you mean 'optim.lr'", "line 3"]),
    ("search:\n  optim.lr: {loguniform: [0, 0.1]}\n", ["search.optim.lr", "low > 0", "line 2"]),
    ("search:\n\n  model.dropout: {uniform: [0.3, 0.1]}\n",
     ["search.model.dropout", "low < high must hold, but got low=0.3, high=0.1", "line 3"]),
    ("search:\n  data.max_frames: {choice: []}\n", ["search.data.max_frames", "non-empty list", "line 2"]),
    ("search:\n  model.dropout: {grid: {low: 0.1, high: 0.5}}\n",
     ["search.model.dropout", "cannot be gridded", "line 2"]),
    ("search_alg: {type: grid}\nsearch:\n  model.dropout: {uniform: [0.1, 0.5]}\n",
     ["search.model.dropout", "search_alg grid needs discrete values", "line 3"]),
    ("search:\n  model.dropout: {grid: [0.1, 0.5]}\n", ["search.model.dropout", "use choice", "line 2"]),
    ("search:\n  model.dropout: {choise: [0.1]}\n", ["search.model.dropout.choise", "did you mean 'choice'"]),
    ("search:\n  model.dropout: {choice: [0.1], uniform: [0, 0.1]}\n",
     ["search.model.dropout", "exactly one"]),
    ("search:\n  model.dropout: 0.1\n", ["search.model.dropout", "put it under base", "line 2"]),
    ("metric: t2v_R2\n", ["metric", "t2v_R2", "did you mean", "line 1"]),
    ("metric: t2v_R1\nmode: maximize\n", ["mode", "min, max", "line 2"]),
    ("search:\n  model.dropout: {uniform: [0.0, 1.0]}\n",
     ["search.model.dropout", "rejects 1.0", "< 1.0", "line 2"]),
    ("search:\n  loss.hard_negatives: {choice: [none, hardest]}\n",
     ["search.loss.hard_negatives", "rejects 'hardest'", "line 2"]),
    ("search:\n  data.max_frames: {grid: [0, 64]}\nsearch_alg: {type: random}\n",
     ["search.data.max_frames", "rejects 0", "line 2"]),
    ("search:\n  loss.hcl_beta: {uniform: [0.1, 1.0], when: {loss.hard_negatives: hcl}}\n",
     ["search.loss.hcl_beta.when.loss.hard_negatives", "not searched", "line 2"]),
    ("search:\n  loss.hard_negatives: {choice: [none, hcl]}\n"
     "  loss.vsepp_margin: {uniform: [0.1, 0.3], when: {loss.hard_negatives: vsepp}}\n",
     ["search.loss.vsepp_margin.when.loss.hard_negatives", "never takes the value 'vsepp'", "line 3"]),
    ("search:\n  model.dropout: {uniform: [0.1, 0.3]}\n"
     "  loss.hcl_beta: {uniform: [0.1, 0.3], when: {model.dropout: 0.2}}\n",
     ["when.model.dropout", "choice or grid", "line 3"]),
    ("search:\n  loss.hard_negatives: {choice: [none, hcl], when: {aug.speed: 0.1}}\n"
     "  aug.speed: {choice: [0.0, 0.1], when: {loss.hard_negatives: hcl}}\n",
     ["search.loss.hard_negatives.when", "cycle", "line 2"]),
    ("name: ../evil\n", ["name", "plain folder name", "line 1"]),
    ("name: a/b\n", ["name", "plain folder name"]),
    ("num_samples: 0\n", ["num_samples", ">= 1", "line 1"]),
    ("resources: {cpu: -1}\n", ["resources.cpu", ">= 0"]),
    ("resources: {cpu: 1, gpu: 1.5}\n", ["resources.gpu", "whole GPUs"]),
    ("search:\n  optim.epochs: {uniform: [2, 8]}\n",
     ["search.optim.epochs", "integer key", "int: [low, high]"]),
    ("search:\n  data.use_siglip: {uniform: [0, 1]}\n", ["search.data.use_siglip", "use choice"]),
    ("search:\n  optim.warmup_steps: {int: [0, 210], step: 50}\n",
     ["search.optim.warmup_steps", "multiple of step"]),
    ("search:\n  optim.epochs: {int: [1.5, 8]}\n", ["search.optim.epochs", "integers"]),
    ("base: {model.dropout: 0.2}\nsearch:\n  model.dropout: {choice: [0.1, 0.3]}\n",
     ["search.model.dropout", "also fixed in base", "line 3"]),
    ("search:\n  run.seed: {choice: [0, 1]}\n", ["search.run.seed", "seeds", "line 2"]),
    ("seeds: [0, 0]\n", ["seeds", "twice", "line 1"]),
    ("search_alg: {type: random}\nsearch:\n  model.dropout: {grid: [0.1, 0.2]}\nseeds: [0, 1]\n",
     ["seeds", "other random values", "line 4"]),
    ("seeds: []\n", ["seeds", "non-empty"]),
    ("base: {run.seed: 1}\nseeds: [0]\n", ["base.run.seed", "conflicts with seeds", "line 1"]),
    ("base: {optim.epochs: 4}\nscheduler: {type: asha, grace_period: 5}\n",
     ["scheduler.grace_period", "exceeds max_t"]),
    ("scheduler: {type: asha, reduction_factor: 1}\n", ["scheduler.reduction_factor", "> 1"]),
    ("scheduler: {type: none, grace_period: 2}\n", ["scheduler.grace_period", "type none"]),
    ("targets:\n  good: {t2v_R1: 30, t2v_R11: 75}\n", ["targets.good.t2v_R11", "did you mean"]),
    ("baseline: {name: b}\n", ["baseline", "metrics"]),
    ("baseline:\n  config: {model.dropout: 1.0}\n", ["baseline.config.model.dropout", "< 1.0", "line 2"]),
    ("wandb: {mode: cloud}\n", ["wandb.mode", "offline, online, disabled"]),
    ("retries: -1\n", ["retries", ">= 0"]),
    ("keep_checkpoints: 0\n", ["keep_checkpoints", ">= 1"]),
    ("- a\n- b\n", ["expected a mapping"]),
    ("base: {model.heads: 3}\n", ["base.model.heads", "d_model (128) must be divisible by model.heads (3)"]),
    ("base: {model.d_model: 96, model.heads: 64}\n", ["base.model.heads", "(96) must be divisible", "(64)"]),
    ("search:\n  model.heads: {choice: [4, 6]}\n", ["search.model.heads", "1 of the 2 pairs", "line 2"]),
    ("search:\n  model.d_model: {choice: [96, 128]}\n  model.heads: {choice: [4, 6]}\n",
     ["search.model.heads", "d_model (128) must be divisible by model.heads (6)", "1 of the 4 pairs", "line 3"]),
    ("search:\n  model.d_model: {choice: [96, 128]}\n  model.heads: {int: [2, 4]}\n",
     ["search.model.heads", "model.heads (3)", "1 of the 6 pairs"]),
    ("base: {model.heads: 4}\nsearch:\n  model.d_model: {choice: [96, 128]}\n"
     "  model.heads: {choice: [6], when: {model.d_model: 128}}\n", ["model.heads (6)", "1 of the 2 pairs"]),
    # A bad pair of a searched d_model with the base heads is blamed on d_model, the key that was drawn.
    ("base: {model.heads: 6}\nsearch:\n  model.d_model: {choice: [96, 128]}\n",
     ["search.model.d_model", "1 of the 2 pairs", "line 3"]),
    # Pairs are counted once, whatever else a parent key (optim.lr) varies.
    ("search:\n  optim.lr: {choice: [0.001, 0.002, 0.003]}\n  model.d_model: {choice: [96, 128]}\n"
     "  model.heads: {choice: [4, 6], when: {optim.lr: [0.001, 0.002]}}\n", ["1 of the 4 pairs"]),
    ("baseline:\n  config: {model.heads: 5}\n", ["baseline.config.model.heads", "divisible", "(5)"]),
    # Several seeds under ASHA: each seed's trial judged alone, group means over different epochs.
    ("seeds: [0, 1]\n", ["seeds", "2 seeds with scheduler asha", "scheduler: {type: none}", "line 1"]),
    ("scheduler: {type: asha}\nseeds: [3, 4, 5]\n", ["seeds", "3 seeds", "line 2"]),
    # Coupled choices: each setting as a whole, keys in one place, names of their own.
    ("search:\n  model_size: {choice: [{model.d_model: 100, model.heads: 3}]}\n",
     ["search.model_size", "setting 'd_model=100, heads=3'", "divisible", "line 2"]),
    ("search:\n  model_size: {choice: [{model.d_modle: 64}]}\n",
     ["search.model_size", "unknown trainer key 'model.d_modle'", "did you mean 'model.d_model'"]),
    ("search:\n  model_size: {choice: [{model.dropout: 1.5}]}\n", ["search.model_size", "rejects it", "< 1.0"]),
    ("search:\n  model_size: {choice: [32, 64]}\n", ["search.model_size", "unknown trainer key", "choice of settings"]),
    ("search:\n  model.d_model: {choice: [{heads: 4}]}\n", ["search.model.d_model", "takes plain values"]),
    ("search:\n  model.heads: {choice: [4, 8]}\n  size: {choice: [{model.heads: 4, model.d_model: 64}]}\n",
     ["search.size", "sets model.heads, which search.model.heads also searches", "line 3"]),
    ("base: {model.heads: 4}\nsearch:\n  size:\n    choice:\n      - {model.heads: 4, model.d_model: 64}\n"
     "      - {model.heads: 8, model.d_model: 128}\n",
     ["search.size", "sets model.heads, which is also fixed in base"]),
    ("search:\n  s: {choice: [{run.seed: 1}]}\n", ["search.s", "cannot set run.seed"]),
    ("search:\n  a/b: {choice: [{model.heads: 4}]}\n", ["search.a/b", "no '/'"]),
    # Item 7's distributions, natively.
    ("search:\n  model.dropout: {choice: [0.1, 0.2], probabilities: [0.5, 0.5]}\n",
     ["search.model.dropout", "probabilities need search_alg random", "line 2"]),
    ("search:\n  optim.warmup_steps: {normal: [50, 5]}\n", ["search.optim.warmup_steps", "integer key", "step"]),
    ("search:\n  model.dropout: {normal: [0.2, 0.1]}\n",
     ["search.model.dropout", "normal mu 0.2 sigma 0.1", "takes model.dropout in [0, 1) and rejects -0.275"]),
    ("search:\n  optim.lr: {lognormal: {mu: -7, sigma: 0}}\n", ["search.optim.lr", "sigma > 0 must hold"]),
    ("search_alg: {type: grid}\nsearch:\n  model.dropout: {beta: [2, 5]}\n",
     ["search.model.dropout", "search_alg grid needs discrete values", "beta"]),
    ("search:\n  model.dropout: {uniform: [0.1, 0.2], probabilities: [1]}\n",
     ["search.model.dropout.probabilities", "only applies to choice"]),
    ("base: {model.d_model: 96}\nbaseline:\n  config: {model.heads: 64}\n",
     ["baseline.config.model.heads", "(96) must be divisible", "(64)"]),
]


@pytest.mark.parametrize(("text", "parts"), BAD, ids=[b[1][0][:40] for b in BAD])
def test_bad_space_is_one_line_naming_the_key(tmp_path: Path, text: str, parts: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserError) as ei:
        load_space(path)
    msg = str(ei.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    if any(p.startswith("line") for p in parts):
        assert msg.startswith(str(path))


def test_errors_from_plain_data_name_the_key_without_a_line() -> None:
    with pytest.raises(UserError, match=r"^search\.optim\.lr: loguniform needs low > 0"):
        parse_space({"name": "x", "search": {"optim.lr": {"loguniform": [0, 1]}}})
    with pytest.raises(UserError, match="name: required"):
        parse_space({})


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_space(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- Ray Tune param_space


def test_param_space_distributions(spec: SweepSpec) -> None:
    from ray.tune.search import sample

    ps = param_space(spec)
    assert set(ps) == {p.key for p in spec.search}  # conditional keys are sampled too
    frames = ps["data.max_frames"]
    assert isinstance(frames, sample.Categorical) and frames.categories == [32, 48, 64]
    lr = ps["optim.lr"]
    assert isinstance(lr, sample.Float) and isinstance(lr.get_sampler(), sample.LogUniform)
    assert (lr.lower, lr.upper) == (1e-4, 3e-3)
    assert isinstance(ps["model.dropout"].get_sampler(), sample.Uniform)
    warm = ps["optim.warmup_steps"]  # qrandint: multiples of 50, upper bound inclusive
    assert isinstance(warm, sample.Integer) and isinstance(warm.get_sampler(), sample.Quantized)
    assert all(v in (0, 50, 100, 150, 200) for v in warm.sample(size=50))
    k = ps["loss.topk_k"]  # lograndint: exclusive upper bound, so high + 1
    assert isinstance(k.get_sampler(), sample.LogUniform) and (k.lower, k.upper) == (2, 17)


def test_param_space_random_with_grid(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        search:
          data.use_siglip: {grid: [false, true]}
          model.dropout: {choice: [0.4, 0.2]}
          optim.warmup_steps: {int: [5, 25], step: 10}
        search_alg: {type: random, seed: 3}
        num_samples: 3
        """)
    assert not s.uses_optuna()  # Optuna cannot grid: Tune's generator runs param_space
    ps = param_space(s)
    assert ps["data.use_siglip"] == {"grid_search": [False, True]} and "run.seed" not in ps
    assert ps["model.dropout"].categories == [0.4, 0.2]  # choice stays random under search_alg random
    assert ps["optim.warmup_steps"].categories == [5, 15, 25]  # low is no multiple of step: listed
    assert s.grid_size() == 2
    b = s.budget()
    assert (b["trials"], b["grid_points"], b["seeds"]) == (6, 2, 1)


def test_which_searcher(tmp_path: Path, spec: SweepSpec) -> None:
    assert spec.uses_optuna()
    random = load(tmp_path, "search: {model.dropout: {choice: [0.1, 0.2]}}\nsearch_alg: {type: random}\n"
                            "seeds: [0, 1]\nscheduler: {type: none}\n")
    assert random.uses_optuna() and random.budget()["trials"] == 20  # RandomSampler + Repeater over seeds
    assert not load(tmp_path, "search_alg: {type: grid}\n").uses_optuna()


def test_search_alg_grid_enumerates_choices(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        search:
          data.use_siglip: {grid: [false, true]}
          model.dropout: {choice: [0.4, 0.2]}
          optim.grad_accum: {grid: [2, 4]}
        search_alg: {type: grid}
        scheduler: {type: none}
        base: {optim.epochs: 5}
        seeds: [0, 1]
        """)
    ps = param_space(s)
    assert ps["model.dropout"] == {"grid_search": [0.4, 0.2]} and ps["run.seed"] == {"grid_search": [0, 1]}
    assert s.grid_size() == 8
    b = s.budget()
    assert b["trials"] == 16 and b["max_total_epochs"] == 80 and b["min_total_epochs"] == 80


def test_budget_with_asha_and_searched_epochs(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        search:
          optim.epochs: {choice: [4, 12]}
        scheduler: {type: asha, grace_period: 2, max_t: 10}
        num_samples: 5
        """)
    assert s.grid_size() is None and s.epochs_range() == (4, 12)
    b = s.budget()
    got = (b["trials"], b["max_epochs_per_trial"], b["max_total_epochs"], b["min_total_epochs"])
    assert got == (5, 10, 50, 10)
    assert load(tmp_path, "search: {optim.epochs: {int: [3, 9]}}\n").scheduler.max_t == 9


def test_variant_generator_is_seeded(spec: SweepSpec) -> None:
    from ray.tune.search import BasicVariantGenerator

    assert isinstance(variant_generator(spec.search_alg.seed), BasicVariantGenerator)


# ---------------------------------------------------------------- Optuna


def _study(spec: SweepSpec):  # type: ignore[no-untyped-def]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", sampler=optuna_sampler(spec.search_alg))


def test_define_by_run_suggests_conditional_keys_only_when_active(spec: SweepSpec) -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    study, kinds = _study(spec), set()
    for i in range(24):
        trial = study.ask()
        assert define_by_run(spec, trial) is None
        hn = trial.params["loss.hard_negatives"]
        kinds.add(hn)
        assert ("loss.hcl_beta" in trial.params) == (hn == "hcl")
        assert ("loss.topk_k" in trial.params) == (hn == "topk")
        assert set(spec.active_params(trial.params)) == set(trial.params)
        study.tell(trial, float(i % 5))
    assert {"hcl", "topk"} <= kinds
    d = trial.distributions
    assert isinstance(d["optim.lr"], FloatDistribution) and d["optim.lr"].log
    assert isinstance(d["optim.warmup_steps"], IntDistribution) and d["optim.warmup_steps"].step == 50
    assert isinstance(d["data.max_frames"], CategoricalDistribution)


def test_optuna_sampler_is_explicit_and_seeded(spec: SweepSpec) -> None:
    import optuna

    sampler = optuna_sampler(spec.search_alg)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 4 and sampler._multivariate is True
    assert sampler._constant_liar is True and sampler._group is True

    def first(n: int) -> list[dict]:
        study, out = _study(spec), []
        for _ in range(n):
            t = study.ask()
            define_by_run(spec, t)
            out.append(t.params)
            study.tell(t, 1.0)
        return out

    assert first(6) == first(6)


def test_random_sampler_and_grid_has_none(tmp_path: Path) -> None:
    import optuna

    r = load(tmp_path, "search_alg: {type: random, seed: 1}\n")
    assert isinstance(optuna_sampler(r.search_alg), optuna.samplers.RandomSampler)
    g = load(tmp_path, "search_alg: {type: grid}\n")
    with pytest.raises(ValueError):
        optuna_sampler(g.search_alg)


# ---------------------------------------------------------------- trials


def test_trial_overrides_drop_inactive_and_merge_base(spec: SweepSpec) -> None:
    params = {"loss.hard_negatives": "none", "loss.hcl_beta": 0.3, "loss.topk_k": 4, "optim.lr": 1e-3}
    o = spec.trial_overrides(params)
    assert o == {"data": {"path": "DATA"}, "optim": {"epochs": 6, "lr": 1e-3},
                 "loss": {"hard_negatives": "none"}, "run": {"seed": 0}}
    o = spec.trial_overrides({**params, "loss.hard_negatives": "hcl", "__trial_index__": 1})
    assert o["loss"] == {"hard_negatives": "hcl", "hcl_beta": 0.3}
    nested = spec.trial_overrides({"loss": {"hard_negatives": "topk", "topk_k": 4}})
    assert nested["loss"] == {"hard_negatives": "topk", "topk_k": 4}
    with pytest.raises(UserError, match="optim.momentum"):
        spec.trial_overrides({"optim.momentum": 0.9})


def test_trial_config(spec: SweepSpec) -> None:
    cfg = spec.trial_config({"model.dropout": 0.3, "loss.hard_negatives": "vsepp", "run.seed": 5})
    assert isinstance(cfg, TrainConfig)
    got = (cfg.model.dropout, cfg.optim.epochs, cfg.loss.hard_negatives, cfg.run.seed)
    assert got == (0.3, 6, "vsepp", 5)
    assert spec.trial_config({}).data.path == "DATA"


def test_conditional_key_in_base_is_its_inactive_value(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        base: {loss.hcl_beta: 0.7}
        search:
          loss.hard_negatives: {choice: [none, hcl]}
          loss.hcl_beta: {uniform: [0.1, 0.5], when: {loss.hard_negatives: hcl}}
        """)
    assert s.trial_config({"loss.hard_negatives": "none", "loss.hcl_beta": 0.2}).loss.hcl_beta == 0.7
    assert s.trial_config({"loss.hard_negatives": "hcl", "loss.hcl_beta": 0.2}).loss.hcl_beta == 0.2


def test_chained_conditions(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        search:
          loss.topk_weight: {uniform: [1.5, 3.0], when: {loss.topk_k: [4]}}
          loss.topk_k: {choice: [2, 4], when: {loss.hard_negatives: topk}}
          loss.hard_negatives: {choice: [none, topk]}
        """)
    assert [p.key for p in s.ordered_params()] == ["loss.hard_negatives", "loss.topk_k", "loss.topk_weight"]
    params = {"loss.hard_negatives": "none", "loss.topk_k": 4, "loss.topk_weight": 2.0}
    assert s.active_params(params) == {"loss.hard_negatives": "none"}
    on = {**params, "loss.hard_negatives": "topk"}
    assert s.active_params(on) == on


def test_bool_condition_is_not_an_int(tmp_path: Path) -> None:
    s = load(tmp_path, """\
        search:
          data.use_siglip: {choice: [true, false]}
          optim.grad_accum: {choice: [1, 2]}
          model.dropout: {choice: [0.1, 0.2], when: {data.use_siglip: true}}
        """)
    assert "model.dropout" not in s.active_params({"data.use_siglip": 1, "model.dropout": 0.1})
    with pytest.raises(UserError, match="never takes the value 1"):
        load(tmp_path, "search:\n  data.use_siglip: {choice: [true, false]}\n"
                       "  model.dropout: {choice: [0.1], when: {data.use_siglip: 1}}\n")


# ---------------------------------------------------------------- identity: to_dict, fingerprint, diff


def test_to_dict_round_trips(spec: SweepSpec) -> None:
    d = spec.to_dict()
    assert parse_space(d) == spec
    again = parse_space(json.loads(json.dumps(d)))
    assert again == spec and again.fingerprint() == spec.fingerprint()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_spaces_parse_and_round_trip(path: Path) -> None:
    s = load_space(path)
    assert s.name == path.stem and s.num_samples >= 1
    assert parse_space(s.to_dict()) == s


def test_the_readme_example_validates() -> None:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("The YAML format:"):]
    block = block[block.index("```yaml") + len("```yaml"):]
    from vlp_sweep.space.yaml_lines import parse_yaml

    spec = parse_space(parse_yaml(block[:block.index("```")]))
    assert spec.param("model_size") is not None and spec.runs_baseline and spec.warnings == ()


def test_fingerprint_is_stable_and_ignores_order_and_operations(tmp_path: Path, spec: SweepSpec) -> None:
    assert load(tmp_path, SPACE).fingerprint() == spec.fingerprint()
    lines = SPACE.splitlines()
    i = lines.index("  data.max_frames: {choice: [32, 48, 64]}")
    j = lines.index("  model.dropout: {uniform: [0.0, 0.4]}")
    lines[i], lines[j] = lines[j], lines[i]
    reordered = "\n".join(lines) + "\nmax_concurrent: 4\nwandb: {mode: disabled}\ndescription: other\n"
    assert load(tmp_path, reordered).fingerprint() == spec.fingerprint()
    changed = load(tmp_path, SPACE.replace("num_samples: 8", "num_samples: 9"))
    assert changed.fingerprint() != spec.fingerprint()


def test_diff_lists_what_changed(tmp_path: Path, spec: SweepSpec) -> None:
    other = load(tmp_path, SPACE.replace("num_samples: 8", "num_samples: 16")
                 .replace("3e-3]", "1e-2]").replace("{epochs: 6}", "{epochs: 6, weight_decay: 0.1}")
                 .replace("  loss.topk_k: {int: [2, 16], log: true, when: {loss.hard_negatives: [topk]}}\n",
                          "")
                 + "max_concurrent: 3\n")
    lines = spec.diff(other)
    assert "num_samples: 8 -> 16" in lines
    assert any(line.startswith("search.optim.lr: ") and "0.01" in line for line in lines)
    assert any(line.startswith("search.loss.topk_k: removed") for line in lines)
    assert "base.optim.weight_decay: added (0.1)" in lines
    assert not any("max_concurrent" in line for line in lines)
    assert "max_concurrent: 2 -> 3" in spec.diff(other, everything=True)
    assert spec.diff(spec) == []


def test_spec_pickles(spec: SweepSpec) -> None:
    import pickle

    assert pickle.loads(pickle.dumps(spec)) == spec  # Ray pickles the searcher holding define_by_run


def test_parsing_imports_neither_ray_nor_optuna() -> None:
    code = ("import sys; from vlp_sweep.space import load_space; "
            f"s = load_space({str(SHIPPED[0])!r}); s.budget(); s.fingerprint(); s.trial_config({{}}); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'optuna')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- data check


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vlp_sweep.data.synth import synthesize

    root = tmp_path_factory.mktemp("data")
    small: dict[str, Any] = {"train": 24, "dev": 8, "test": 4, "signers": 4, "heldout_signers": 1,
                             "lexicon": 12}
    return {"with": synthesize(root / "with", siglip_dim=8, **small),
            "without": synthesize(root / "without", siglip_dim=0, **small)}


def test_check_data(tmp_path: Path, tiny_data: dict[str, Path]) -> None:
    ok = load(tmp_path, f"base: {{data.path: {tiny_data['with']}}}\n")
    (line,) = check_data(ok).lines
    assert "24 clips" not in line and "train 24" in line and "dev 8" in line


def test_check_data_reports_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths are resolved from the current directory
    s = load(tmp_path, "name: x\nbase:\n  data.path: data/nowhere\n")
    with pytest.raises(UserError, match=r"line 3: base\.data\.path: data folder not found: data/nowhere"):
        check_data(s)


def test_check_data_needs_siglip_when_a_trial_can_use_it(tmp_path: Path, tiny_data: dict[str, Path]) -> None:
    path = tiny_data["without"]
    text = f"base: {{data.path: {path}}}\nsearch:\n  data.use_siglip: {{choice: [false, true]}}\n"
    with pytest.raises(UserError, match=r"line 3: search\.data\.use_siglip: .*no siglip\.npy"):
        check_data(load(tmp_path, text))
    assert check_data(load(tmp_path, f"base: {{data.path: {path}, data.use_siglip: false}}\n")).lines


# ---------------------------------------------------------------- CLI


def test_validate_prints_the_resolved_space(tmp_path: Path, tiny_data: dict[str, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, SPACE.replace("DATA", str(tiny_data["with"])))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    for part in ("loss.hcl_beta", "uniform 0.1 .. 1", "when loss.hard_negatives = hcl", "HCL concentration",
                 "optim.epochs", "optuna TPE (seed 0", "ASHA", "t2v_R1 (max)", "budget: 8 trials",
                 "wandb: offline", "data: ", "ok: t is a valid search space"):
        assert part in out, part


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_validate_shipped_spaces(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path), "--no-data"]) == 0
    assert "valid search space" in capsys.readouterr().out


def test_validate_exit_2_on_bad_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "search:\n  model.dropout: {uniform: [0.0, 1.0]}\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "line 2: search.model.dropout" in err
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 2


def test_validate_exit_2_on_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "base: {data.path: data/none}\n")
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "budget:" in captured.out and "base.data.path: data folder not found" in captured.err
    assert main(["validate", str(path), "--no-data"]) == 0


def test_linked_keys_pass_when_every_combination_a_trial_can_draw_fits() -> None:
    # Each value alone does not fit the default d_model (128), but every pair a trial can draw does.
    both = {"model.d_model": {"choice": [96, 192]}, "model.heads": {"choice": [4, 6]}}
    assert len(parse_space({"name": "x", "search": both}).search) == 2
    # heads 6 only where d_model is 96; elsewhere the base heads (4) applies.
    cond = {"model.d_model": {"choice": [96, 128]},
            "model.heads": {"choice": [6], "when": {"model.d_model": 96}}}
    spec = parse_space({"name": "x", "base": {"model.heads": 4}, "search": cond})
    assert spec.trial_config({"model.d_model": 128, "model.heads": 6}).model.heads == 4
    # Fixed values are checked as a pair: alone, heads 6 does not divide the default width (128).
    assert parse_space({"name": "x", "base": {"model.d_model": 96, "model.heads": 6}}).base
    assert parse_space({"name": "x", "base": {"model.heads": 6}, "search": {"model.d_model": {"choice": [96, 192]}},
                        "baseline": {"config": {"model.d_model": 96}, "run": True}}).runs_baseline
    assert parse_space({"name": "x", "base": {"model.d_model": 96},
                        "baseline": {"config": {"model.heads": 6}}}).baseline is not None
    wandb = {"name": "w", "method": "random", "metric": {"name": "t2v_R1", "goal": "maximize"},
             "parameters": {"model.d_model": {"value": 96}, "model.heads": {"value": 6},
                            "optim.lr": {"values": [0.001, 0.002]}}}
    assert dict(parse_space(wandb).base)["model.heads"] == 6
    # Ranges too wide to enumerate are checked at their ends; the pairs between are left to the trials
    # that draw a bad pair, with a warning.
    wide = {"model.d_model": {"int": [64, 100000]}, "model.heads": {"int": [1, 2]}}
    spec = parse_space({"name": "x", "search": wide})
    assert len(spec.search) == 2 and any("too many values to check every pair" in w for w in spec.warnings)
    # One key of the pair searched, the other fixed: the warning names only the searched one
    temp = parse_space({"name": "x", "search": {"loss.temperature": {"loguniform": [0.01, 0.1]}}})
    assert temp.warnings == ("loss.temperature is searched over too many values to check each against "
                             "loss.max_logit_scale, fixed at its default (a range is checked at its ends): trials "
                             "that draw a value the trainer rejects will fail",)
    with pytest.raises(UserError, match=r"search\.model\.heads: model\.d_model \(64\) must be divisible by "
                                        r"model\.heads \(3\)"):
        parse_space({"name": "x", "search": {"model.d_model": {"int": [64, 100000]}, "model.heads": {"int": [2, 4]}}})


def test_a_temperature_that_starts_above_the_cap_is_rejected_in_a_search_space() -> None:
    # A choice: every pair is checked; the error names the key and the cap.
    both = {"loss.temperature": {"choice": [0.07, "log(100)"]}}
    assert len(parse_space({"name": "x", "search": both}).search) == 1
    with pytest.raises(UserError, match=r"search\.loss\.temperature: loss\.temperature \(0\.01\) would start the "
                                        r"logit scale at 100, above loss\.max_logit_scale \(50\)"):
        parse_space({"name": "x", "base": {"loss.max_logit_scale": 50}, "search": both})
    # A range: its low end (a temperature a trial can draw) is checked against the cap.
    with pytest.raises(UserError, match=r"search\.loss\.temperature: loss\.temperature \(0\.005\)"):
        parse_space({"name": "x", "search": {"loss.temperature": {"loguniform": [0.005, 0.1]}}})
    spec = parse_space({"name": "x", "search": {"loss.temperature": {"loguniform": [0.01, 0.1]},
                                                "loss.max_logit_scale": {"choice": [100, 200]}}})
    assert len(spec.search) == 2
    with pytest.raises(UserError, match=r"base\.loss\.max_logit_scale: loss\.temperature \(0\.01\)"):
        parse_space({"name": "x", "base": {"loss.temperature": "log(100)", "loss.max_logit_scale": 20}})
    with pytest.raises(UserError, match=r"loss\.max_logit_scale: must be >= 1"):
        parse_space({"name": "x", "base": {"loss.max_logit_scale": 0}})


COUPLED = """\
search:
  model_size:                     # named settings
    choice:
      small: {model.d_model: 64, model.heads: 4, model.video_layers: 1}
      large: {model: {d_model: 96, heads: 6, video_layers: 3}}
  model:                          # a section's own name: keys relative to it, labels from the values
    choice: [{text_layers: 1, ff_mult: 2}, {text_layers: 2, ff_mult: 4}]
  optim.lr: {loguniform: [1.0e-4, 1.0e-3], when: {model_size: large}}
scheduler: {type: none}
"""


def test_a_coupled_choice_sets_several_keys(tmp_path: Path) -> None:
    s = load(tmp_path, COUPLED)
    size, tower = s.param("model_size"), s.param("model")
    assert size is not None and tower is not None and size.coupled and tower.coupled
    assert size.options == ("small", "large") and tower.options == ("ff_mult=2, text_layers=1",
                                                                    "ff_mult=4, text_layers=2")
    assert size.sets() == ("model.d_model", "model.heads", "model.video_layers")
    cfg = s.trial_config({"model_size": "large", "model": "ff_mult=2, text_layers=1", "optim.lr": 2e-4})
    got = (cfg.model.d_model, cfg.model.heads, cfg.model.video_layers, cfg.model.text_layers, cfg.model.ff_mult)
    assert got == (96, 6, 3, 1, 2) and cfg.optim.lr == 2e-4
    # The keys a choice set ride along in a trial's config (for the record): the label decides.
    small = s.trial_config({"model_size": "small", "model.d_model": 96, "optim.lr": 2e-4})
    assert small.model.d_model == 64 and small.optim.lr == s.fixed("optim.lr")  # lr only when large
    assert s.active_params({"model_size": "small", "optim.lr": 2e-4}) == {"model_size": "small"}
    assert parse_space(s.to_dict()) == s and s.to_dict()["search"]["model_size"]["choice"]["large"] == {
        "model.d_model": 96, "model.heads": 6, "model.video_layers": 3}
    gridded = COUPLED.replace("scheduler: {type: none}", "search_alg: {type: grid}\nscheduler: {type: none}")
    lr_line = "  optim.lr: {loguniform: [1.0e-4, 1.0e-3], when: {model_size: large}}\n"
    grid = load(tmp_path, gridded.replace(lr_line, ""))
    assert grid.grid_size() == 4 and param_space(grid)["model_size"] == {"grid_search": ["small", "large"]}


def test_pairs_set_by_a_choice_are_checked_with_the_other_searched_keys(tmp_path: Path) -> None:
    text = "search:\n  size: {choice: [{model.d_model: 64}, {model.d_model: 96}]}\n  model.heads: {choice: [4, 64]}\n"
    with pytest.raises(UserError, match=r"search\.model\.heads: model\.d_model \(96\) must be divisible by "
                                        r"model\.heads \(64\): 1 of the 4 pairs"):
        load(tmp_path, text)
    assert load(tmp_path, text.replace("96", "128")).param("size") is not None


def test_validate_shows_what_each_setting_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(write(tmp_path, COUPLED)), "--no-data"]) == 0
    out = capsys.readouterr().out
    for part in ("model_size               choice of 2 settings", "- small {model.d_model: 64, model.heads: 4, "
                 "model.video_layers: 1}", "sets model.heads: attention heads", "sets model.ff_mult"):
        assert part in out, part


def test_a_linked_keys_error_survives_pickling() -> None:
    import pickle

    from vlp_sweep.errors import LinkedKeysError

    e = pickle.loads(pickle.dumps(LinkedKeysError("d_model vs heads", ("model.d_model", "model.heads"))))
    assert isinstance(e, LinkedKeysError) and str(e) == "d_model vs heads" and e.keys == ("model.d_model",
                                                                                           "model.heads")


def test_listed_values_are_resolved_once_when_the_space_is_parsed() -> None:
    spec = parse_space({"name": "x", "search": {
        "loss.temperature": {"choice": [0.07, "log(100)"]},
        "loss.hcl_beta": {"uniform": [0.1, 1.0], "when": {"loss.temperature": "log(100)"}},
        "loss.max_logit_scale": {"grid": [100, 200]},
        "arm": {"choice": {"sharp": {"optim.lr": "3e-3", "aug.scale": 0}, "soft": {"optim.lr": 1e-3}}}},
        "search_alg": {"type": "random"}})
    temp, beta, cap, arm = spec.search
    assert temp.options == (0.07, 0.01) and beta.when == (("loss.temperature", (0.01,)),)
    assert cap.options == (100.0, 200.0) and all(isinstance(v, float) for v in cap.options)
    assert arm.expand("sharp") == {"aug.scale": 0.0, "optim.lr": 0.003}
    assert parse_space(spec.to_dict()) == spec  # the resolved form parses to itself
    # Two spellings of one value are one value: listed twice is an error, as for any duplicate.
    with pytest.raises(UserError, match=r"search\.loss\.temperature: choice lists 0\.01 twice"):
        parse_space({"name": "x", "search": {"loss.temperature": {"choice": [0.01, "log(100)"]}}})
    wandb = parse_space({"name": "w", "method": "random", "parameters": {
        "loss": {"parameters": {"temperature": {"values": [0.07, "log(100)"]}}}}})
    assert wandb.search[0].options == (0.07, 0.01)

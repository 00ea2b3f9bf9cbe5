"""Every translation of a search space (``vlp_sweep.space``) into Ray Tune and Optuna objects: the one
adapter module (the spec knows nothing of Ray or Optuna).

- Ray: ``param_space(spec)`` (Tune's samplers, grid searches, and the samplers below for the shaped
  distributions and the keys of a coupled choice) and ``variant_generator`` (seeded).
- Optuna: ``define_by_run(spec, trial)`` (``suggest_*`` calls in dependency order),
  ``optuna_sampler(search_alg)``, and ``optuna_distribution(entry)`` for the report and journals.

Shaped distributions (normal, lognormal, beta, rounded log-uniform, weighted choice) are drawn
through their inverse CDF: Optuna suggests the quantile ``u`` under the key's own name (TPE models
``u``) and ``define_by_run`` returns the value actually used, which Ray's ``OptunaSearch`` merges over
the suggested params, and records it as the trial's user attribute of the same name. Ray's
generator draws ``u`` from its seeded random state and puts the value in the config directly.

Ray and Optuna are imported inside the functions, so importing this module costs nothing; the
sampler classes are plain (duck-typed to Tune's ``Sampler``) and picklable, as Tune pickles its space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlp_sweep.space.distributions import (
    U_HIGH,
    U_LOW,
    Choice,
    Discrete,
    Distribution,
    Grid,
    Int,
    LogUniform,
    Uniform,
    contains,
)
from vlp_sweep.space.entries import from_dict
from vlp_sweep.space.params import Param, holds, with_parents
from vlp_sweep.space.sections import SearchAlg
from vlp_sweep.space.spec import SweepSpec

# ---------------------------------------------------------------- Ray Tune


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Ray Tune ``param_space`` for search_alg grid, and random with grid keys: a flat dict keyed by
    dotted trainer key (``{"optim.lr": tune.loguniform(1e-4, 3e-3), ...}``). choice -> tune.choice
    (tune.grid_search under search_alg grid), grid -> tune.grid_search, uniform -> tune.uniform /
    tune.quniform, loguniform -> tune.loguniform, int -> tune.randint / qrandint / lograndint (or a
    choice of the points when low is no multiple of step); shaped distributions -> a seeded inverse-CDF
    sampler. A coupled choice is a choice (grid) of its labels, and each key it sets a
    ``tune.sample_from`` that reads the drawn label, so a trial's config shows the keys it set. With
    more than one seed, ``"run.seed"`` is a grid over the seeds: every config runs once per seed when
    all keys are gridded. (Tune draws random keys afresh for each grid point, so a random space with
    several seeds is refused at parse time unless it goes through Optuna, see ``uses_optuna``.)
    Conditional keys are sampled anyway; ``trial_overrides`` drops them when inactive."""
    from ray import tune

    grid_alg = spec.search_alg.type == "grid"
    space: dict[str, Any] = {}
    for p in spec.search:
        space[p.key] = ray_domain(p.distribution, grid_alg)
        if p.coupled:
            chain = tuple(with_parents((p.key,), spec.search))
            for key in p.sets():
                space[key] = tune.sample_from(SettingValue(chain, key, spec.fixed(key)))
    if len(spec.seeds) > 1:
        space["run.seed"] = tune.grid_search(list(spec.seeds))
    return space


def ray_domain(d: Distribution, grid_alg: bool = False) -> Any:
    """One distribution as a Ray Tune sampler (a grid search for grid, and for choice under search_alg grid)."""
    from ray import tune
    from ray.tune.search.sample import Float, Integer

    if isinstance(d, Grid) or (isinstance(d, Choice) and grid_alg):
        return tune.grid_search(list(d.options))
    if isinstance(d, Choice) and d.probabilities is not None:
        return _weighted(d)
    if isinstance(d, Discrete):
        return tune.choice(list(d.options))
    if isinstance(d, LogUniform):
        return tune.loguniform(d.low, d.high)
    if isinstance(d, Uniform):
        return tune.uniform(d.low, d.high) if d.step is None else tune.quniform(d.low, d.high, d.step)
    if isinstance(d, Int):
        return _ray_int(d)
    lo, hi = d.bounds()
    domain = Integer(int(lo), int(hi) + 1) if d.integer else Float(lo, hi)
    domain.set_sampler(QuantileSampler(d))
    return domain


def _weighted(d: Choice) -> Any:
    from ray.tune.search.sample import Categorical

    domain = Categorical(list(d.options))
    domain.set_sampler(QuantileSampler(d))
    return domain


def _ray_int(d: Int) -> Any:
    from ray import tune

    low, high, step = int(d.low), int(d.high), int(d.step or 1)
    if d.log:
        return tune.lograndint(low, high + 1)  # Ray's upper bound is exclusive here
    if step == 1:
        return tune.randint(low, high + 1)
    if low % step == 0:
        return tune.qrandint(low, high, step)  # multiples of step, upper bound inclusive
    # Ray quantises to multiples of q, Optuna to low + k*step: list the points to agree with Optuna.
    return tune.choice(list(range(low, high + 1, step)))


class QuantileSampler:
    """Tune sampler of a shaped distribution: u from the generator's seeded random state, then the
    distribution's inverse CDF (``value_at``)."""

    def __init__(self, distribution: Any) -> None:
        self.distribution = distribution

    def sample(self, domain: Any, config: Any = None, size: int = 1, random_state: Any = None) -> Any:
        us = random_state.uniform(U_LOW, U_HIGH, size=size)
        items = [self.distribution.value_at(float(u)) for u in us]
        return items if len(items) > 1 else items[0]

    def __str__(self) -> str:
        return f"Quantile({self.distribution.describe()})"


class SettingValue:
    """``tune.sample_from`` callable: the value a coupled choice's drawn label gives one trainer key,
    or the key's fixed value when the choice is inactive (its condition failed)."""

    def __init__(self, chain: tuple[Param, ...], key: str, inactive: Any) -> None:
        self.chain, self.key, self.inactive = chain, key, inactive  # chain: the choice after its parents

    def __call__(self, config: Mapping[str, Any]) -> Any:
        from ray.tune.search.variant_generator import RecursiveDependencyError

        drawn: dict[str, Any] = {}
        for p in self.chain:
            value = config.get(p.key)
            if not contains(p.options, value):  # not drawn yet: Tune resolves this key in a later pass
                raise RecursiveDependencyError(f"{self.key} depends on {p.key}")
            if holds(p, drawn):
                drawn[p.key] = value
        choice = self.chain[-1]
        return choice.expand(drawn[choice.key]).get(self.key, self.inactive) if choice.key in drawn \
            else self.inactive


def variant_generator(seed: int, max_concurrent: int | None = None) -> Any:
    """For search_alg random/grid: Ray's ``BasicVariantGenerator`` seeded with search_alg.seed, so a
    random sweep samples the same configs every time (Tune's default generator is unseeded)."""
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=seed)


# ---------------------------------------------------------------- Optuna


def define_by_run(spec: SweepSpec, trial: Any) -> dict[str, Any] | None:
    """Optuna define-by-run space of ``spec`` for one trial (the searcher calls it on ``study.ask()``).

    Suggests every searched key in dependency order; a conditional key is suggested only when its
    condition holds, so Optuna's TPE models it only on the trials where it matters. Returns the config
    values to merge over the suggested params (Ray's OptunaSearch does ``{**params, **returned}``):
    the value actually used for a shaped key (whose Optuna param is its quantile ``u``) and the keys a
    coupled choice sets; None when there are none. Seeds are not part of what Optuna sees: with one
    seed ``trial_overrides`` sets it, with several the driver repeats each suggestion (Ray's
    ``Repeater``, which sets ``__trial_index__``) and reports the mean to Optuna."""
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for p in spec.ordered_params():
        if holds(p, values):
            values[p.key], more = suggest(p, trial)
            extra.update(more)
    return extra or None


def suggest(p: Param, trial: Any) -> tuple[Any, dict[str, Any]]:
    """Ask an Optuna trial for one param: (the value drawn, config values to add)."""
    d = p.distribution
    if getattr(d, "shaped", False):
        value = d.value_at(trial.suggest_float(p.key, U_LOW, U_HIGH))  # type: ignore[union-attr]
        trial.set_user_attr(p.key, value)  # the value used, beside the quantile Optuna models
        return value, {p.key: value}
    if isinstance(d, Discrete):
        value = trial.suggest_categorical(p.key, list(d.options))
        return value, (p.expand(value) if p.coupled else {})
    if isinstance(d, Int):
        return trial.suggest_int(p.key, int(d.low), int(d.high), step=int(d.step or 1), log=d.log), {}
    assert isinstance(d, (Uniform, LogUniform))
    step = d.step if isinstance(d, Uniform) else None
    return trial.suggest_float(p.key, d.low, d.high, step=step, log=isinstance(d, LogUniform)), {}


def optuna_sampler(a: SearchAlg) -> Any:
    """A seeded Optuna sampler. optuna: ``TPESampler`` with n_startup_trials, n_ei_candidates, seed,
    multivariate, group and constant_liar all passed explicitly (Optuna 5.0 turned multivariate and
    constant_liar on by default; passing them keeps the sweep the same across Optuna versions).
    The Parzen-estimator settings deprecated in Optuna 4.x (prior, magic clip, endpoints, gamma,
    weights) are left at their fixed values: passing them only raises FutureWarnings.
    random: ``RandomSampler(seed)``. grid has no Optuna sampler (Ray's grid search runs it)."""
    import warnings

    import optuna

    if a.type == "random":
        return optuna.samplers.RandomSampler(seed=a.seed)
    if a.type != "optuna":
        raise ValueError(f"search_alg {a.type} has no Optuna sampler; it runs through param_space()")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group is 'experimental'
        return optuna.samplers.TPESampler(
            n_startup_trials=a.n_startup_trials, n_ei_candidates=a.n_ei_candidates, seed=a.seed,
            multivariate=a.multivariate, group=a.group, constant_liar=a.constant_liar)


def optuna_distribution(entry: Mapping[str, Any] | Distribution | Param) -> Any:
    """A spec ``search:`` entry (plain data, as in ``spec.to_dict()["search"][key]``), a distribution or
    a param -> the Optuna distribution of the values a trial's params hold for it (what the leaderboard's
    ``params`` column shows): categorical over the values (a coupled choice: over its labels), float or
    int over a range, and for a shaped distribution the range of the values it can draw. Raises
    ``ValueError`` for an entry that is no distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(entry, Param):
        d: Any = entry.distribution
    elif isinstance(entry, Mapping):
        d = from_dict({k: v for k, v in entry.items() if k != "when"})
    else:
        d = entry
    if isinstance(d, Discrete):
        return CategoricalDistribution(tuple(d.options))
    if isinstance(d, Int):
        return IntDistribution(int(d.low), int(d.high), step=int(d.step or 1), log=d.log)
    if isinstance(d, (Uniform, LogUniform)):
        return FloatDistribution(d.low, d.high, step=getattr(d, "step", None), log=isinstance(d, LogUniform))
    lo, hi = d.bounds()
    log = d.kind in ("lognormal", "loguniform") and lo > 0
    if d.integer:
        return IntDistribution(int(lo), int(hi), log=log and lo >= 1)
    return FloatDistribution(lo, hi, log=log)

"""The resolved search space: a frozen :class:`SweepSpec` and what can be read off it without Ray.

Built once per process by ``parse.parse_space`` (which validates everything and puts every value in the
trainer's own form); its methods are pure: plain data and identity (``to_dict``, ``fingerprint``,
``diff``), what a trial runs (``active_params``, ``trial_overrides``, ``trial_config``,
``baseline_config``) and the sweep's size (``budget``). It is picklable: Ray hands it to every trial and
pickles it with the searcher. The Ray Tune and Optuna objects are built from it by the sweep package
(``vlp_sweep.sweep.backends``); the spec knows nothing of them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vlp_sweep.config import TrainConfig, config_keys, make_config, nest
from vlp_sweep.errors import UserError
from vlp_sweep.model_factory import BUILTIN_FACTORY, option_keys
from vlp_sweep.space.distributions import contains, same_value
from vlp_sweep.space.params import Param, flatten, holds, topological
from vlp_sweep.space.sections import Baseline, Confirm, Pairs, Resources, Scheduler, SearchAlg, WandbSettings
from vlp_sweep.train.watch.health_config import HealthConfig

TOP_KEYS = ("name", "description", "base", "search", "search_alg", "scheduler", "metric", "mode",
            "num_samples", "max_concurrent", "resources", "seeds", "retries", "keep_checkpoints", "wandb",
            "baseline", "targets", "confirm", "health", "code")
# What decides which trials run and how they are judged; the rest (concurrency, resources, W&B,
# baseline, targets, text) may change when a sweep is resumed.
FINGERPRINT_KEYS = ("base", "search", "search_alg", "scheduler", "metric", "mode", "num_samples", "seeds",
                    "confirm")


@dataclass(frozen=True)
class SweepSpec:
    """A resolved search space. Every optional field holds its resolved default (see ``to_dict``)."""

    name: str
    base: Pairs = ()  # flat dotted trainer key -> value, normalised by the trainer config
    search: tuple[Param, ...] = ()
    search_alg: SearchAlg = field(default_factory=SearchAlg)
    scheduler: Scheduler = field(default_factory=Scheduler)
    metric: str = "t2v_R1"
    mode: str = "max"
    num_samples: int = 10
    max_concurrent: int = 2
    resources: Resources = field(default_factory=Resources)
    seeds: tuple[int, ...] = (0,)
    retries: int = 0
    keep_checkpoints: int = 2
    wandb: WandbSettings = field(default_factory=WandbSettings)
    baseline: Baseline | None = None
    targets: tuple[tuple[str, Pairs], ...] = ()
    confirm: Confirm | None = None  # the confirmation stage after the search (None: no stage)
    description: str = ""
    health: HealthConfig = field(default_factory=HealthConfig)  # thresholds of each trial's health checklist
    code: tuple[str, ...] = ()  # absolute folders the model factory is imported from (not fingerprinted)
    # Where it came from; not part of equality, the fingerprint or to_dict.
    source: str | None = field(default=None, compare=False)
    format: str = field(default="native", compare=False)  # native | wandb
    warnings: tuple[str, ...] = field(default=(), compare=False)
    lines: Pairs = field(default=(), compare=False, repr=False)  # "base.data.path" -> YAML line

    # ------------------------------------------------------------ plain data and identity

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data in the native format; ``parse_space(spec.to_dict()) == spec``."""
        out: dict[str, Any] = {
            "name": self.name, "description": self.description, "base": dict(self.base),
            "search": {p.key: p.to_dict() for p in self.search}, "search_alg": self.search_alg.to_dict(),
            "scheduler": self.scheduler.to_dict(), "metric": self.metric, "mode": self.mode,
            "num_samples": self.num_samples, "max_concurrent": self.max_concurrent,
            "resources": self.resources.to_dict(), "seeds": list(self.seeds), "retries": self.retries,
            "keep_checkpoints": self.keep_checkpoints, "wandb": self.wandb.to_dict(),
            "targets": {level: dict(t) for level, t in self.targets}, "health": self.health.to_dict(),
            "confirm": self.confirm.to_dict() if self.confirm is not None else None}
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_dict()
        if self.code:
            out["code"] = list(self.code)
        return out

    def fingerprint(self) -> str:
        """sha256 of the canonical resolved spec (FINGERPRINT_KEYS only): a sweep refuses to resume
        when it changes. Concurrency, resources, retries, checkpoints kept, W&B, baseline (unless it runs
        as a trial), targets, name and description are left out, so they may change between runs of one sweep."""
        d = self.to_dict()
        # A space without a confirmation stage keeps the fingerprint it had before the stage existed.
        keep = {k: d[k] for k in FINGERPRINT_KEYS if d[k] is not None}
        if self.runs_baseline:  # then it is one of the sweep's trials
            keep["baseline_trial"] = self._baseline_trial()
        canon = json.dumps(keep, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canon.encode()).hexdigest()

    def diff(self, other: SweepSpec, everything: bool = False) -> list[str]:
        """Human lines of what differs from ``self`` to ``other``, e.g. ``num_samples: 8 -> 16``.
        Only the fingerprinted parts unless ``everything``."""
        keys = TOP_KEYS if everything else FINGERPRINT_KEYS
        a, b = _leaves(self.to_dict(), keys), _leaves(other.to_dict(), keys)
        out = []
        for k in sorted(set(a) | set(b), key=_order_key):
            if k not in a:
                out.append(f"{k}: added ({_show(b[k])})")
            elif k not in b:
                out.append(f"{k}: removed (was {_show(a[k])})")
            elif a[k] != b[k]:
                out.append(f"{k}: {_show(a[k])} -> {_show(b[k])}")
        mine, theirs = self._baseline_trial(), other._baseline_trial()
        if mine != theirs and not everything:  # part of the fingerprint (with everything, already listed)
            out.append(f"baseline trial: {_show(mine)} -> {_show(theirs)}")
        return out

    def _baseline_trial(self) -> dict[str, Any] | None:
        return dict(self.baseline.config) if self.runs_baseline and self.baseline is not None else None

    # ------------------------------------------------------------ the searched keys

    def param(self, key: str) -> Param | None:
        """The searched param named ``key`` (a trainer key, or a coupled choice's name)."""
        return next((p for p in self.search if p.key == key), None)

    def setter(self, key: str) -> Param | None:
        """The param that sets trainer key ``key`` (itself, or a coupled choice), if any."""
        return next((p for p in self.search if key in p.sets()), None)

    def fixed(self, key: str) -> Any:
        """A key's base value, or the trainer default (the base alone need not be a valid config:
        with ``model.d_model`` searched, a base ``model.heads`` may not divide the default width)."""
        base, known = dict(self.base), config_keys()
        if key in base or key in known:
            return base.get(key, known.get(key, {}).get("default"))
        return option_keys(base.get("model.factory", BUILTIN_FACTORY))[0].get(key, {}).get("default")

    def possible_values(self, key: str) -> list[Any]:
        """Every value trainer key ``key`` can take in a trial: the searched values (a range's two
        ends), plus the fixed value when the search is conditional; else the fixed value."""
        p = self.setter(key)
        if p is None:
            return [self.fixed(key)]
        vals = p.values_of(key)
        return vals + [self.fixed(key)] if p.when or p.coupled and len(vals) < len(p.options) else vals

    def base_overrides(self) -> dict[str, Any]:
        """The fixed trainer overrides, flat dotted keys."""
        return dict(self.base)

    def ordered_params(self) -> tuple[Param, ...]:
        """Searched params with every condition's key before the keys that depend on it."""
        return topological(self.search)

    def active_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The sampled params whose conditions hold (a condition on an inactive key does not hold)."""
        flat = flatten(params)
        out: dict[str, Any] = {}
        for p in self.ordered_params():
            if p.key in flat and holds(p, out):
                out[p.key] = flat[p.key]
        return out

    def drawn(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The trainer keys the active params set (a coupled choice's label becomes its keys)."""
        out: dict[str, Any] = {}
        by_key = {p.key: p for p in self.search}
        for key, value in self.active_params(params).items():
            out.update(by_key[key].expand(value))
        return out

    # ------------------------------------------------------------ trials

    def trial_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sampled params (flat dotted keys, or nested) -> the trial's nested trainer overrides:
        base, then the active params (a coupled choice's label -> the keys its setting sets);
        inactive conditional keys are dropped, so the base value or the trainer default applies.
        ``run.seed`` passes through; with a single seed it is set to it. Keys starting with ``__``
        (Ray's ``__trial_index__``) are ignored, and so are the keys a coupled choice sets (the
        searchers put them in a trial's config for the record; the label decides). Any other key
        the space does not search is an error."""
        flat = {k: v for k, v in flatten(params).items() if not k.startswith("__")}
        set_by_choice = {k for p in self.search if p.coupled for k in p.sets()}
        known = {p.key for p in self.search} | set_by_choice | {"run.seed"}
        extra = sorted(set(flat) - known)
        if extra:
            raise UserError(f"trial params not in the search space: {', '.join(extra)}")
        chosen = {k: v for k, v in flat.items() if k not in set_by_choice}
        out = {**dict(self.base), **self.drawn(chosen)}
        if "run.seed" in flat:
            out["run.seed"] = flat["run.seed"]
        elif len(self.seeds) == 1:
            out["run.seed"] = self.seeds[0]
        return nest(out)

    @property
    def runs_baseline(self) -> bool:
        """Whether the baseline runs as one more trial (``baseline.run``)."""
        return self.baseline is not None and self.baseline.run

    def baseline_config(self) -> TrainConfig:
        """The baseline trial's config: base, then ``baseline.config`` (the search's keys at their base
        values or trainer defaults)."""
        assert self.baseline is not None
        return make_config(self.trial_overrides({}), dict(self.baseline.config))

    def trial_config(self, params: Mapping[str, Any]) -> TrainConfig:
        """The validated trainer config of one trial (``make_config(trial_overrides(params))``)."""
        return make_config(self.trial_overrides(params))

    # ------------------------------------------------------------ how it is searched

    def uses_optuna(self) -> bool:
        """Whether the sweep searches through an Optuna sampler (the sweep's ``optuna_search``): search_alg
        optuna, and random without grid keys (a seeded RandomSampler: conditional keys only sampled when
        active, and each config repeated over the seeds). Otherwise Ray Tune's own generator runs the space
        (``backends.param_space``)."""
        return self.search_alg.type == "optuna" or (
            self.search_alg.type == "random" and not any(p.kind == "grid" for p in self.search))

    # ------------------------------------------------------------ size

    def epochs_range(self) -> tuple[int, int]:
        """(min, max) ``optim.epochs`` over the space (searched or fixed)."""
        pts = [int(v) for v in self.possible_values("optim.epochs")]
        return min(pts), max(pts)

    def grid_size(self) -> int | None:
        """Grid points per sample: product of the grid params' sizes (and of choice params under
        search_alg grid); None when nothing is gridded. Seeds are not included (see ``budget``)."""
        grid_alg = self.search_alg.type == "grid"
        sizes = [len(p.options) for p in self.search if p.kind == "grid" or (grid_alg and p.kind == "choice")]
        return math.prod(sizes) if sizes else None

    def budget(self) -> dict[str, int]:
        """Size of the sweep: ``trials`` = num_samples x grid points x seeds (+ the baseline trial per seed
        with baseline.run); epochs per trial (at most ASHA's max_t); ``max_total_epochs`` an upper bound
        (no early stopping); ``min_total_epochs`` what it costs when ASHA stops every trial it can at the
        first rung."""
        grid, seeds = self.grid_size() or 1, len(self.seeds)
        searched = self.num_samples * grid * seeds
        lo, hi = self.epochs_range()
        if self.scheduler.type == "asha":
            hi = min(hi, self.scheduler.max_t)
            lo = min(lo, self.scheduler.grace_period)
        n_base = seeds if self.runs_baseline else 0  # once per seed, never stopped early
        base_epochs = n_base * self.baseline_config().optim.epochs if n_base else 0
        return {"trials": searched + n_base, "num_samples": self.num_samples, "grid_points": grid, "seeds": seeds,
                "baseline_trials": n_base, "max_epochs_per_trial": hi, "min_epochs_per_trial": lo,
                "max_total_epochs": searched * hi + base_epochs, "min_total_epochs": searched * lo + base_epochs,
                "max_concurrent": self.max_concurrent, **self._confirm_budget()}

    @property
    def confirms_baseline(self) -> bool:
        """Whether the confirmation stage trains the baseline config too (the space gives one)."""
        return self.confirm is not None and self.baseline is not None and bool(self.baseline.config)

    def _confirm_budget(self) -> dict[str, int]:
        """Trials and epochs (at most) of the confirmation stage: every config runs all its epochs; with
        ``ablate``, as many ablations as the winner can have keys that differ from the baseline config."""
        if self.confirm is None:
            return {"confirm_trials": 0, "confirm_max_epochs": 0, "confirm_ablations": 0}
        n, hi = len(self.confirm.seeds), self.epochs_range()[1]
        base_epochs = self.baseline_config().optim.epochs if self.confirms_baseline else 0
        ablations = self.most_ablations() if self.confirm.ablate else 0
        epochs = n * (self.confirm.top * hi + base_epochs + ablations * max(hi, base_epochs))
        return {"confirm_trials": (self.confirm.top + self.confirms_baseline + ablations) * n,
                "confirm_max_epochs": epochs, "confirm_ablations": ablations}

    def most_ablations(self) -> int:
        """The most keys a confirmed winner can differ from the baseline config in (``confirm.ablate`` runs
        one configuration per key): the keys the baseline sets to other values than the base, and every key
        the search sets, the keys under a condition counted for its largest branch only (one ``when:`` value
        of a key is active at a time). 0 without a baseline config."""
        if self.baseline is None or not self.baseline.config:
            return 0
        keys = {k for k, v in self.baseline.config if not same_value(v, self.fixed(k))}
        keys |= {k for p in self.search if not p.when for k in p.sets()}
        branches: dict[str, list[Param]] = {}
        for p in self.search:
            if p.when:
                branches.setdefault(p.when[0][0], []).append(p)
        extra = 0
        for kids in branches.values():
            values = [v for p in kids for v in p.when[0][1]]
            extra += max(len({k for p in kids if contains(p.when[0][1], v) for k in p.sets()} - keys)
                         for v in values)
        return len(keys) + extra


# ---------------------------------------------------------------- diff helpers


def _leaves(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in keys:
        v = d.get(k)
        if k == "search" and isinstance(v, dict):
            for key, entry in v.items():
                out[f"search.{key}"] = entry
        elif isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        elif v is not None:
            out[k] = v
    return out


def _order_key(path: str) -> tuple[int, str]:
    head = path.split(".")[0]
    return (TOP_KEYS.index(head) if head in TOP_KEYS else len(TOP_KEYS), path)


def _show(v: Any) -> str:
    return json.dumps(v, default=str) if isinstance(v, (dict, list)) else str(v)

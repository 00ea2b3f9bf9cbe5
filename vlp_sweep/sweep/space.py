"""A sweep's search space: YAML in, a validated, frozen :class:`SweepSpec` out.

``load_space(path)`` reads a native space or a W&B sweep config (see ``wandb_format``);
``parse_space(data)`` does the same from plain data (``spec.to_dict()`` round-trips through it).
Every problem is one :class:`UserError` line naming the key, and the YAML line where there is
one. The native format::

    name: quickstart                 # default: the file's stem; a plain folder name
    description: ...
    base: {data.path: data/x, optim: {epochs: 6}}   # fixed trainer overrides, nested or dotted
    search:                          # dotted trainer key -> distribution (see params.py)
      optim.lr: {loguniform: [1e-4, 3e-3]}
      loss.hcl_beta: {uniform: [0.1, 1.0], when: {loss.hard_negatives: hcl}}
    search_alg: {type: optuna, seed: 0, ...}       # optuna (TPE) | random | grid
    scheduler: {type: asha, grace_period: 1, reduction_factor: 2}   # or {type: none}
    metric: t2v_R1                   # mode defaults to the metric's direction
    num_samples: 10                  # configs sampled (grid: repeats of the whole grid)
    max_concurrent: 2
    resources: {cpu: 1, gpu: 0}
    seeds: [0]                       # every config runs once per seed
    retries: 0
    keep_checkpoints: 2
    wandb: {mode: offline, project: vlp-sweep, entity: null, tags: []}
    baseline: {name: ..., metrics: {t2v_R1: ...}, config: {...}}
    targets: {good: {t2v_R1: 30}, excellent: {t2v_R1: 40}}

Nothing here imports Ray or Optuna at module level: the methods that build their objects do.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlp_sweep.config import LINKED_KEYS, TrainConfig, config_keys, make_config, nest
from vlp_sweep.errors import LinkedKeysError, UserError, did_you_mean
from vlp_sweep.metric_names import MODE
from vlp_sweep.sweep.params import Param, contains, parse_param
from vlp_sweep.sweep.sections import (
    Baseline,
    Pairs,
    Resources,
    Scheduler,
    SearchAlg,
    WandbSettings,
    check_keys,
    get_bool,
    get_int,
    get_str,
    metric_name,
    parse_metric_table,
    parse_resources,
    parse_scheduler,
    parse_search_alg,
    parse_targets,
    parse_wandb,
    section,
)
from vlp_sweep.sweep.yaml_lines import Where, line_of, load_yaml

TOP_KEYS = ("name", "description", "base", "search", "search_alg", "scheduler", "metric", "mode",
            "num_samples", "max_concurrent", "resources", "seeds", "retries", "keep_checkpoints", "wandb",
            "baseline", "targets")
# What decides which trials run and how they are judged; the rest (concurrency, resources, W&B,
# baseline, targets, text) may change when a sweep is resumed.
FINGERPRINT_KEYS = ("base", "search", "search_alg", "scheduler", "metric", "mode", "num_samples", "seeds")
SWEEP_FIXED = ("run.out_dir", "run.select_metric")  # the driver sets these for every trial


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
    description: str = ""
    # Where it came from; not part of equality, the fingerprint or to_dict.
    source: str | None = field(default=None, compare=False)
    format: str = field(default="native", compare=False)  # native | wandb
    warnings: tuple[str, ...] = field(default=(), compare=False)
    lines: Pairs = field(default=(), compare=False, repr=False)  # "base.data.path" -> YAML line

    # ------------------------------------------------------------ plain data

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec as plain data in the native format; ``parse_space(spec.to_dict()) == spec``."""
        out: dict[str, Any] = {
            "name": self.name, "description": self.description, "base": dict(self.base),
            "search": {p.key: p.to_dict() for p in self.search}, "search_alg": self.search_alg.to_dict(),
            "scheduler": self.scheduler.to_dict(), "metric": self.metric, "mode": self.mode,
            "num_samples": self.num_samples, "max_concurrent": self.max_concurrent,
            "resources": self.resources.to_dict(), "seeds": list(self.seeds), "retries": self.retries,
            "keep_checkpoints": self.keep_checkpoints, "wandb": self.wandb.to_dict(),
            "targets": {level: dict(t) for level, t in self.targets}}
        if self.baseline is not None:
            out["baseline"] = self.baseline.to_dict()
        return out

    def fingerprint(self) -> str:
        """sha256 of the canonical resolved spec (FINGERPRINT_KEYS only): a sweep refuses to resume
        when it changes. Concurrency, resources, retries, checkpoints kept, W&B, baseline (unless it runs
        as a trial), targets, name and description are left out, so they may change between runs of one sweep."""
        d = self.to_dict()
        keep = {k: d[k] for k in FINGERPRINT_KEYS}
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

    # ------------------------------------------------------------ trials

    def fixed(self, key: str) -> Any:
        """A key's base value, or the trainer default (the base alone need not be a valid config:
        with ``model.d_model`` searched, a base ``model.heads`` may not divide the default width)."""
        return dict(self.base).get(key, config_keys()[key]["default"])

    def base_overrides(self) -> dict[str, Any]:
        """The fixed trainer overrides, flat dotted keys."""
        return dict(self.base)

    def ordered_params(self) -> tuple[Param, ...]:
        """Searched params with every condition's key before the keys that depend on it."""
        return _topological(self.search)

    def active_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The sampled params whose conditions hold (a condition on an inactive key does not hold)."""
        flat = _flatten_params(params)
        out: dict[str, Any] = {}
        for p in self.ordered_params():
            if p.key in flat and _holds(p, out):
                out[p.key] = flat[p.key]
        return out

    def trial_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Sampled params (flat dotted keys, or nested) -> the trial's nested trainer overrides:
        base, then the active params; inactive conditional keys are dropped, so the base value or
        the trainer default applies. ``run.seed`` passes through; with a single seed it is set to
        it. Keys starting with ``__`` (Ray's ``__trial_index__``) are ignored; any other key the
        space does not search is an error."""
        flat = {k: v for k, v in _flatten_params(params).items() if not k.startswith("__")}
        known = {p.key for p in self.search} | {"run.seed"}
        extra = sorted(set(flat) - known)
        if extra:
            raise UserError(f"trial params not in the search space: {', '.join(extra)}")
        out = {**dict(self.base), **self.active_params(flat)}
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

    # ------------------------------------------------------------ Ray Tune and Optuna

    def uses_optuna(self) -> bool:
        """Whether the driver should search with Ray's ``OptunaSearch(space=spec.define_by_run,
        sampler=spec.optuna_sampler())`` (+ ``Repeater`` for several seeds): search_alg optuna, and
        random without grid keys (a seeded RandomSampler: conditional keys only sampled when active,
        and each config repeated over the seeds). Otherwise Tune's own generator runs
        ``param_space()`` (``variant_generator()`` seeds it)."""
        return self.search_alg.type == "optuna" or (
            self.search_alg.type == "random" and not any(p.kind == "grid" for p in self.search))

    def param_space(self) -> dict[str, Any]:
        """Ray Tune ``param_space`` for search_alg grid, and random with grid keys: a flat dict keyed by
        dotted trainer key (``{"optim.lr": tune.loguniform(1e-4, 3e-3), ...}``). choice -> tune.choice
        (tune.grid_search under search_alg grid), grid -> tune.grid_search, uniform -> tune.uniform /
        tune.quniform, loguniform -> tune.loguniform, int -> tune.randint / qrandint / lograndint (or a
        choice of the points when low is no multiple of step). With more than one seed, ``"run.seed"``
        is a grid over the seeds: every config runs once per seed when all keys are gridded. (Tune
        draws random keys afresh for each grid point, so a random space with several seeds is refused
        at parse time unless it goes through Optuna, see ``uses_optuna``.) Conditional keys are
        sampled anyway; ``trial_overrides`` drops them when inactive."""
        from ray import tune

        grid_alg = self.search_alg.type == "grid"
        space = {p.key: p.ray(grid_alg) for p in self.search}
        if len(self.seeds) > 1:
            space["run.seed"] = tune.grid_search(list(self.seeds))
        return space

    def define_by_run(self, trial: Any) -> dict[str, Any] | None:
        """Optuna define-by-run space for Ray's ``OptunaSearch(space=spec.define_by_run)``.

        Suggests every searched key in dependency order; a conditional key is suggested only when its
        condition holds, so Optuna's TPE models it only on the trials where it matters. Returns None:
        no constants are added. Seeds are not part of what Optuna sees: with one seed
        ``trial_overrides`` sets it, with several the driver repeats each suggestion (Ray's
        ``Repeater``, which sets ``__trial_index__``) and reports the mean to Optuna."""
        values: dict[str, Any] = {}
        for p in self.ordered_params():
            if _holds(p, values):
                values[p.key] = p.suggest(trial)
        return None

    def optuna_sampler(self) -> Any:
        """A seeded Optuna sampler. optuna: ``TPESampler`` with n_startup_trials, n_ei_candidates, seed,
        multivariate, group and constant_liar all passed explicitly (Optuna 5.0 turned multivariate and
        constant_liar on by default; passing them keeps the sweep the same across Optuna versions).
        The Parzen-estimator settings deprecated in Optuna 4.x (prior, magic clip, endpoints, gamma,
        weights) are left at their fixed values: passing them only raises FutureWarnings.
        random: ``RandomSampler(seed)``. grid has no Optuna sampler (Ray's grid search runs it)."""
        import warnings

        import optuna

        a = self.search_alg
        if a.type == "random":
            return optuna.samplers.RandomSampler(seed=a.seed)
        if a.type != "optuna":
            raise ValueError(f"search_alg {a.type} has no Optuna sampler; it runs through param_space()")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group is 'experimental'
            return optuna.samplers.TPESampler(
                n_startup_trials=a.n_startup_trials, n_ei_candidates=a.n_ei_candidates, seed=a.seed,
                multivariate=a.multivariate, group=a.group, constant_liar=a.constant_liar)

    def variant_generator(self, max_concurrent: int | None = None) -> Any:
        """For search_alg random/grid: Ray's ``BasicVariantGenerator`` seeded with search_alg.seed, so a
        random sweep samples the same configs every time (Tune's default generator is unseeded)."""
        from ray.tune.search import BasicVariantGenerator

        return BasicVariantGenerator(max_concurrent=max_concurrent or 0, random_state=self.search_alg.seed)

    # ------------------------------------------------------------ size

    def epochs_range(self) -> tuple[int, int]:
        """(min, max) ``optim.epochs`` over the space (searched or fixed)."""
        p = self._param("optim.epochs")
        if p is None:
            e = int(self.fixed("optim.epochs"))
            return e, e
        pts = [int(v) for v in p.values] if p.discrete else [int(p.low or 1), int(p.high or 1)]
        return min(pts), max(pts)

    def grid_size(self) -> int | None:
        """Grid points per sample: product of the grid params' sizes (and of choice params under
        search_alg grid); None when nothing is gridded. Seeds are not included (see ``budget``)."""
        grid_alg = self.search_alg.type == "grid"
        sizes = [len(p.values) for p in self.search if p.kind == "grid" or (grid_alg and p.kind == "choice")]
        return math.prod(sizes) if sizes else None

    def budget(self) -> dict[str, int]:
        """Size of the sweep: ``trials`` = num_samples x grid points x seeds (+ the baseline trial per seed
        with baseline.run); epochs per trial (at most
        ASHA's max_t); ``max_total_epochs`` an upper bound (no early stopping); ``min_total_epochs``
        what it costs when ASHA stops every trial it can at the first rung."""
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
                "max_concurrent": self.max_concurrent}

    def _param(self, key: str) -> Param | None:
        return next((p for p in self.search if p.key == key), None)


# ---------------------------------------------------------------- helpers of SweepSpec


def _holds(p: Param, values: Mapping[str, Any]) -> bool:
    return all(k in values and contains(vs, values[k]) for k, vs in p.when)


class _CycleError(UserError):
    def __init__(self, key: str, text: str) -> None:
        super().__init__(f"search.{key}.when: {text}")
        self.key, self.text = key, text


def _topological(params: tuple[Param, ...]) -> tuple[Param, ...]:
    by_key = {p.key: p for p in params}
    done: dict[str, Param] = {}

    def visit(p: Param, path: tuple[str, ...]) -> None:
        if p.key in done:
            return
        if p.key in path:
            raise _CycleError(p.key, f"conditions form a cycle ({' -> '.join((*path, p.key))})")
        for k, _ in p.when:
            if k in by_key:
                visit(by_key[k], (*path, p.key))
        done[p.key] = p

    for p in params:
        visit(p, ())
    return tuple(done.values())


def _flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            out.update(_flatten_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


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


# ---------------------------------------------------------------- loading and parsing


def load_space(path: str | Path) -> SweepSpec:
    """Read a search space YAML file (native or W&B sweep format) into a validated :class:`SweepSpec`.
    The name defaults to the file's stem. Does not look at the data (see :func:`check_data`)."""
    data = load_yaml(path)
    return parse_space(data, source=str(path), default_name=Path(path).stem)


def parse_space(data: Any, source: str | None = None, default_name: str | None = None) -> SweepSpec:
    """Plain data (from YAML, JSON or ``spec.to_dict()``) -> :class:`SweepSpec`. A W&B sweep config
    (top-level ``method`` and ``parameters``) is converted first. Mappings that carry YAML line
    numbers (``yaml_lines.LineDict``) give errors with lines; ``source`` names the file in them."""
    from vlp_sweep.sweep import wandb_format

    where = Where(source)
    if not isinstance(data, Mapping):
        raise where.error("search space", f"expected a mapping of settings, got {type(data).__name__}")
    fmt: str = "native"
    warnings: list[str] = []
    if wandb_format.is_wandb(data):
        data, warnings = wandb_format.to_native(data, where)
        where, fmt = Where(source, wandb_format.LABELS), "wandb"
    return _Parser(data, where, default_name or (Path(source).stem if source else None)).spec(fmt, warnings)


class _Parser:
    """One pass over a native space; the order matters only where defaults depend on other keys."""

    def __init__(self, data: Mapping[str, Any], where: Where, default_name: str | None) -> None:
        self.d, self.w, self.default_name = data, where, default_name
        self.keys = config_keys()
        self.lines: dict[str, int] = {}
        self.warnings: list[str] = []

    def spec(self, fmt: str, warnings: list[str]) -> SweepSpec:
        check_keys(self.d, "", TOP_KEYS, self.w)
        self.warnings = list(warnings)
        base = self._base()
        seeds = self._seeds(base)
        search = self._search(base)
        num_samples, max_conc = self._counts()
        alg = parse_search_alg(section(self.d, "search_alg", self.w), self.w, num_samples, max_conc,
                               any(p.when for p in search))
        self._check_alg(alg, search, seeds)
        metric, mode = self._metric()
        tmp = SweepSpec(name="-", base=tuple(base.items()), search=search)
        sched = parse_scheduler(section(self.d, "scheduler", self.w), self.w, tmp.epochs_range()[1])
        spec = SweepSpec(
            name=self._name(), description=get_str(self.d, "description", "description", self.w, None) or "",
            base=tuple(sorted(base.items())), search=search, search_alg=alg, scheduler=sched,
            metric=metric, mode=mode, num_samples=num_samples or (1 if alg.type == "grid" else 10),
            max_concurrent=max_conc, resources=parse_resources(section(self.d, "resources", self.w), self.w),
            seeds=seeds, retries=get_int(self.d, "retries", "retries", self.w, 0, lo=0),
            keep_checkpoints=get_int(self.d, "keep_checkpoints", "keep_checkpoints", self.w, 2, lo=1),
            wandb=parse_wandb(section(self.d, "wandb", self.w), self.w), baseline=self._baseline(base),
            targets=parse_targets(section(self.d, "targets", self.w), self.w),
            source=self.w.source, format=fmt, warnings=tuple(self.warnings), lines=tuple(self.lines.items()))
        if spec.runs_baseline:
            self._check_baseline_run(spec)
        return spec

    def _check_baseline_run(self, spec: SweepSpec) -> None:
        line = line_of(section(self.d, "baseline", self.w), "run")
        if not spec.uses_optuna():
            raise self._err("baseline.run", f"needs search_alg optuna or random without grid keys (with "
                                            f"{spec.search_alg.type}, put the baseline's values in the grid)", line)
        try:
            spec.baseline_config()
        except UserError as e:
            raise self._err("baseline.config", str(e), line) from None

    def _err(self, key: str, msg: str, line: int | None) -> UserError:
        return self.w.error(key, msg, line)

    def _name(self) -> str:
        name = self.d.get("name", self.default_name)
        if name is None:
            raise self._err("name", "required when the space has no file name", None)
        if not isinstance(name, str) or not name.strip():
            raise self._err("name", f"expected a non-empty string, got {name!r}", line_of(self.d, "name"))
        if "/" in name or "\\" in name or ".." in name or name.startswith(".") or not name.isprintable():
            raise self._err("name", "must be a plain folder name (no '/', '\\', '..' or leading '.'), "
                                    f"got {name!r}", line_of(self.d, "name"))
        return name

    # ------------------------------------------------------------ base and search

    def _trainer_leaves(self, m: Mapping[str, Any], label: str,
                        leaf: str) -> dict[str, tuple[Any, int | None]]:
        """Walk nested and/or dotted trainer keys; ``leaf`` names what a full key holds."""
        out: dict[str, tuple[Any, int | None]] = {}

        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for k, v in node.items():
                dotted, line = f"{prefix}{k}", line_of(node, k)
                if dotted in self.keys:
                    if dotted in out:
                        raise self._err(f"{label}.{dotted}", "is set twice (nested and dotted)", line)
                    out[dotted] = (v, line)
                elif isinstance(v, Mapping) and any(key.startswith(f"{dotted}.") for key in self.keys):
                    walk(v, f"{dotted}.")
                else:
                    hint = did_you_mean(dotted, self.keys)
                    raise self._err(f"{label}.{dotted}", f"unknown trainer key{hint}", line)

        if not isinstance(m, Mapping):
            raise self._err(label, f"expected a mapping of trainer keys to {leaf}s, got {m!r}",
                            line_of(self.d, label))
        walk(m, "")
        return out

    def _config_values(self, m: Mapping[str, Any], label: str) -> dict[str, Any]:
        """Fixed trainer values, each checked by the trainer config and normalised ('log(100)' -> 0.01)."""
        out = {}
        for key, (v, line) in self._trainer_leaves(m, label, "value").items():
            self.lines[f"{label}.{key}"] = line or 0
            if isinstance(v, (Mapping, list)):
                hint = " (distributions go under search)" if label == "base" else ""
                raise self._err(f"{label}.{key}", f"expected a single value, got {v!r}{hint}", line)
            try:
                out[key] = make_config({key: v}).flat()[key]
            except LinkedKeysError:
                out[key] = v  # fine alone; the pair is checked with the whole space (_check_linked)
            except UserError as e:
                raise self._err(f"{label}.{key}", _strip_key(str(e), key), line) from None
        return out

    def _base(self) -> dict[str, Any]:
        base = self._config_values(section(self.d, "base", self.w), "base")
        for key in SWEEP_FIXED:
            if key in base:
                self.warnings.append(f"base.{key} is ignored: the sweep sets it for every trial")
        return base

    def _seeds(self, base: dict[str, Any]) -> tuple[int, ...]:
        """``seeds`` is the one place for the seed; a lone base ``run.seed`` becomes ``seeds: [it]``."""
        in_base = base.pop("run.seed", None)
        if "seeds" not in self.d:
            return (in_base,) if in_base is not None else (0,)
        line = line_of(self.d, "seeds")
        if in_base is not None:
            raise self._err("base.run.seed", "conflicts with seeds: give the seed(s) only under seeds",
                            self.lines.get("base.run.seed"))
        raw = self.d["seeds"]
        raw = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if (not isinstance(raw, list) or not raw
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)):
            raise self._err("seeds", f"expected a non-empty list of integers >= 0, got {self.d['seeds']!r}",
                            line)
        if len(set(raw)) != len(raw):
            raise self._err("seeds", f"lists a seed twice: {raw}", line)
        return tuple(raw)

    def _search(self, base: dict[str, Any]) -> tuple[Param, ...]:
        m = section(self.d, "search", self.w)
        params = []
        for key, (entry, line) in self._trainer_leaves(m, "search", "distribution").items():
            self.lines[f"search.{key}"] = line or 0
            if key == "run.seed":
                raise self._err("search.run.seed", "use seeds: [...] to repeat trials over seeds", line)
            p = parse_param(key, entry, self.w, line)
            if key in base and not p.when:
                raise self._err(f"search.{key}", "is also fixed in base: remove one (a base value is only "
                                                 "allowed for a conditional key, as its value when inactive)",
                                line)
            params.append(p)
        search = tuple(params)
        for p in search:
            self._check_points(p, base)
        self._check_conditions(search)
        self._check_linked(search, base)
        return search

    def _check_points(self, p: Param, base: dict[str, Any]) -> None:
        """Every value (or both ends of a range) through the trainer config, so a bad sample fails now.
        A rule linking this key to another (``model.heads`` must divide ``model.d_model``) is left to
        :meth:`_check_linked`, which sees both."""
        line = self.lines.get(f"search.{p.key}")
        typ = self.keys[p.key]["type"]
        if typ == "int" and p.kind in ("uniform", "loguniform"):
            raise self._err(f"search.{p.key}", f"is an integer key: use int: [low, high] instead of {p.kind}",
                            line)
        if typ in ("bool", "str") and not p.discrete:
            raise self._err(f"search.{p.key}", f"takes {typ} values: use choice: [...] instead of {p.kind}",
                            line)
        for v in p.check_points():
            try:
                make_config(base, {p.key: v})
            except LinkedKeysError:
                continue  # fine alone: _check_linked checks it with what it can be paired with
            except UserError as e:
                raise self._err(f"search.{p.key}", f"the trainer rejects {v!r}: {_strip_key(str(e), p.key)}",
                                line) from None

    def _check_linked(self, search: tuple[Param, ...], base: dict[str, Any]) -> None:
        """Keys the trainer checks together (``model.d_model`` / ``model.heads``): the base values, or
        every pair a trial can draw (conditions applied; a key not drawn keeps its base value or
        default), must be valid, or those trials would fail."""
        searched = {p.key for p in search}
        for keys in LINKED_KEYS:
            if not searched & set(keys):
                self._check_fixed_pair(base, "base")
                continue
            involved = _with_parents(tuple(k for k in keys if k in searched), search)
            value_sets = [vs for vs in map(_enumerable, involved) if vs is not None]
            if len(value_sets) < len(involved) or math.prod(map(len, value_sets)) > 4096:
                self.warnings.append(f"{' and '.join(keys)} are searched over too many values to check every "
                                     "pair: trials that draw a pair the trainer rejects will fail")
                continue
            spec = SweepSpec(name="-", base=tuple(base.items()), search=search)
            pairs: dict[tuple[Any, ...], str] = {}  # pair -> the searched key a bad pair is blamed on
            for combo in itertools.product(*value_sets):
                drawn = spec.active_params(dict(zip((p.key for p in involved), combo)))
                pair = tuple(drawn.get(k, spec.fixed(k)) for k in keys)
                pairs.setdefault(pair, next((k for k in reversed(keys) if k in drawn), keys[-1]))
            bad = []
            for pair, key in pairs.items():
                try:
                    make_config(base, dict(zip(keys, pair)))
                except LinkedKeysError as e:
                    bad.append((str(e), key))
            if bad:
                label = f"search.{bad[0][1]}" if bad[0][1] in searched else f"base.{bad[0][1]}"
                raise self._err(label, f"{bad[0][0]}: {len(bad)} of the {len(pairs)} pairs of "
                                f"{' and '.join(keys)} a trial can draw would fail (search values that always "
                                "fit, or make one key conditional on the other with when:)",
                                self.lines.get(label))

    def _check_fixed_pair(self, values: dict[str, Any], label: str, under: dict[str, Any] | None = None) -> None:
        """A linked rule over fixed values (``base``, or ``baseline.config`` over ``under``)."""
        try:
            make_config(under or {}, values)
        except LinkedKeysError as e:
            key = next((k for k in reversed(e.keys) if k in values), e.keys[-1])
            raise self._err(f"{label}.{key}", str(e), self.lines.get(f"{label}.{key}")) from None

    def _check_conditions(self, search: tuple[Param, ...]) -> None:
        by_key = {p.key: p for p in search}
        for p in search:
            line = self.lines.get(f"search.{p.key}")
            for k, vals in p.when:
                label = f"search.{p.key}.when.{k}"
                parent = by_key.get(k)
                if k == p.key:
                    raise self._err(label, "a key cannot depend on itself", line)
                if parent is None:
                    raise self._err(label, f"'{k}' is not searched{did_you_mean(k, by_key)}; conditions "
                                           "refer to searched choice/grid keys", line)
                if not parent.discrete:
                    raise self._err(label, f"'{k}' is a {parent.kind} range; conditions need a choice or "
                                           "grid key", line)
                for v in vals:
                    if not contains(parent.values, v):
                        raise self._err(label, f"{k} never takes the value {v!r} (its values: "
                                               f"{', '.join(map(repr, parent.values))})", line)
        try:
            _topological(search)
        except _CycleError as e:
            raise self._err(f"search.{e.key}.when", e.text, self.lines.get(f"search.{e.key}")) from None

    # ------------------------------------------------------------ the rest

    def _counts(self) -> tuple[int | None, int]:
        ns = self.d.get("num_samples")
        num_samples = None if ns is None else get_int(self.d, "num_samples", "num_samples", self.w, 1, lo=1)
        return num_samples, get_int(self.d, "max_concurrent", "max_concurrent", self.w, 2, lo=1)

    def _check_alg(self, alg: SearchAlg, search: tuple[Param, ...], seeds: tuple[int, ...]) -> None:
        for p in search:
            line = self.lines.get(f"search.{p.key}")
            if alg.type == "optuna" and p.kind == "grid":
                raise self._err(f"search.{p.key}", "Optuna TPE cannot grid: use choice: [...] (or "
                                                   "search_alg: {type: grid} to run every combination)", line)
            if alg.type == "grid" and not p.discrete:
                raise self._err(f"search.{p.key}", "search_alg grid needs discrete values, but this is a "
                                                   f"{p.kind} range: list the values with grid: [...]", line)
        gridded = [p for p in search if p.kind == "grid" or (alg.type == "grid" and p.discrete)]
        if alg.type == "random" and gridded and len(seeds) > 1:
            # Tune's generator draws the random keys anew for every grid point, seeds included.
            keys = ", ".join(p.key for p in gridded)
            raise self._err("seeds", f"with search_alg random and grid keys ({keys}) each seed would get "
                                     "other random values: use choice instead of grid, or one seed",
                            line_of(self.d, "seeds"))
        if any(p.when for p in gridded):
            self.warnings.append("conditional grid keys run every combination: trials that differ only in an "
                                 "inactive key are duplicates")

    def _metric(self) -> tuple[str, str]:
        metric = metric_name(self.d.get("metric", "t2v_R1"), "metric", self.w, line_of(self.d, "metric"))
        mode = get_str(self.d, "mode", "mode", self.w, MODE[metric], ("min", "max"))
        if mode != MODE[metric]:
            self.warnings.append(f"mode {mode} for {metric}, which gets better when it goes {MODE[metric]}")
        return metric, mode

    def _baseline(self, base: dict[str, Any]) -> Baseline | None:
        m = section(self.d, "baseline", self.w)
        if not m:
            return None
        check_keys(m, "baseline", ("name", "metrics", "config", "run"), self.w)
        if "metrics" not in m and "config" not in m:
            raise self._err("baseline", "needs metrics: {...} and/or config: {...}",
                            line_of(self.d, "baseline"))
        metrics = parse_metric_table(m["metrics"], "baseline.metrics", self.w, line_of(m, "metrics")) \
            if "metrics" in m else ()
        config = self._config_values(m["config"], "baseline.config") if "config" in m else {}
        if any(set(keys) & set(config) for keys in LINKED_KEYS):
            self._check_fixed_pair(config, "baseline.config", under=base)
        name = get_str(m, "name", "baseline.name", self.w, "baseline")
        run = get_bool(m, "run", "baseline.run", self.w, False)
        if run and not config:
            raise self._err("baseline.run", "needs baseline.config: the trainer settings to run",
                            line_of(m, "run"))
        return Baseline(name=name, metrics=metrics, config=tuple(sorted(config.items())), run=run)


def _enumerable(p: Param, limit: int = 256) -> list[Any] | None:
    """Every value a searched key can take, or None for a float range or an int range wider than ``limit``."""
    if p.discrete:
        return list(p.values)
    low, high = p.bounds()
    step = int(p.step or 1)
    if p.kind == "int" and high - low < limit * step:
        return list(range(int(low), int(high) + 1, step))
    return None


def _with_parents(keys: tuple[str, ...], search: tuple[Param, ...]) -> list[Param]:
    """The params of ``keys`` and every key their conditions depend on, in dependency order."""
    by_key = {p.key: p for p in search}
    need, todo = set(), list(keys)
    while todo:
        k = todo.pop()
        if k not in need:
            need.add(k)
            todo += [parent for parent, _ in by_key[k].when]
    return [p for p in _topological(search) if p.key in need]


def _strip_key(message: str, key: str) -> str:
    """The trainer's messages start with the dotted key, which the caller's label already names."""
    return message[len(key) + 2:] if message.startswith(f"{key}: ") else message


# ---------------------------------------------------------------- data


def check_data(spec: SweepSpec) -> list[str]:
    """Check that every dataset a trial can use exists and fits the space: ``data.path`` (fixed or
    searched; relative paths from the current directory) is a packed dataset with the train and
    eval splits, and has siglip.npy when a trial can turn ``data.use_siglip`` on. Raises a one-line
    UserError naming the key; returns one summary line per dataset."""
    from vlp_sweep.data.packed import load_packed
    from vlp_sweep.sweep import wandb_format

    where = Where(spec.source, wandb_format.LABELS if spec.format == "wandb" else None)
    lines = dict(spec.lines)
    label = "search.data.path" if spec._param("data.path") else "base.data.path"
    splits = dict.fromkeys((spec.fixed("data.train_split"), spec.fixed("data.eval_split")))
    out = []
    for path in _possible(spec, "data.path", spec.fixed("data.path")):
        try:
            ds = load_packed(str(path), mmap=True, check_values=False)
            counts = {s: len(ds.split(s)) for s in splits}
        except UserError as e:
            raise where.error(label, str(e), lines.get(label) or None) from None
        if ds.siglip is None and True in _possible(spec, "data.use_siglip", spec.fixed("data.use_siglip")):
            key = "search.data.use_siglip" if spec._param("data.use_siglip") else "base.data.use_siglip"
            raise where.error(key, f"{path} has no siglip.npy, so trials cannot use SigLIP features "
                                   "(set data.use_siglip: false, or make the data with SigLIP features)",
                              lines.get(key) or None)
        sizes = ", ".join(f"{s} {n}" for s, n in counts.items())
        out.append(f"{path}: {len(ds.manifest)} clips ({sizes}), {ds.n_points} points x {ds.dims}, "
                   f"siglip {'dim ' + str(ds.siglip_dim) if ds.siglip is not None else 'none'}")
    return out


def _possible(spec: SweepSpec, key: str, fixed: Any) -> list[Any]:
    p = spec._param(key)
    if p is None:
        return [fixed]
    vals = list(p.values)
    return vals + [fixed] if p.when else vals  # an inactive conditional key keeps the base/default value

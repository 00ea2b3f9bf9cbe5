"""YAML or plain data in, a validated :class:`SweepSpec` out.

``load_space(path)`` reads a native space or a W&B sweep config (see ``wandb_format``);
``parse_space(data)`` does the same from plain data (``spec.to_dict()`` round-trips through it).
Every problem is one :class:`UserError` line naming the key, and the YAML line where there is one.
The native format::

    name: quickstart                 # default: the file's stem; a plain folder name
    description: ...
    base: {data.path: data/x, optim: {epochs: 6}}   # fixed trainer overrides, nested or dotted
    search:                          # dotted trainer key -> distribution (see entries.py)
      optim.lr: {loguniform: [1e-4, 3e-3]}
      loss.hcl_beta: {uniform: [0.1, 1.0], when: {loss.hard_negatives: hcl}}
      model_size: {choice: {small: {model.d_model: 128, model.heads: 4}, large: {...}}}
    search_alg: {type: optuna, seed: 0, ...}       # optuna (TPE) | random | grid
    scheduler: {type: asha, grace_period: 1, reduction_factor: 2}   # or {type: none}
    metric: t2v_R1                   # mode defaults to the metric's direction
    num_samples: 10                  # configs sampled (grid: repeats of the whole grid)
    max_concurrent: 2
    resources: {cpu: 1, gpu: 0}
    seeds: [0]                       # every config runs once per seed (several: scheduler none)
    retries: 0
    keep_checkpoints: 2
    wandb: {mode: offline, project: vlp-sweep, entity: null, tags: []}
    baseline: {name: ..., metrics: {t2v_R1: ...}, config: {...}}
    targets: {good: {t2v_R1: 30}, excellent: {t2v_R1: 40}}
    confirm: {top: 2, seeds: [1, 2], split: test, ablate: false, max_runs: 40}   # or none: sections.Confirm
    health: {window: 5, min_micro_batch: 2, checks: [{metric: eval_loss, below: 3.0, by_epoch: 100}]}
    code: [models/]                  # folders the model factory imports from (relative to this file)

A model factory of your own (``base: {model.factory: "pkg.mod:build"}``) makes its options keys of the
space (``model.options.NAME``), checked against its signature (``model_factory.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlp_sweep.config import LINKED_KEYS, config_keys, make_config, resolve_value
from vlp_sweep.errors import LinkedKeysError, UserError, did_you_mean
from vlp_sweep.metric_names import MODE
from vlp_sweep.model_factory import BUILTIN_FACTORY, add_import_paths, check_required, is_option_key, option_keys
from vlp_sweep.space.checks import Checks, strip_key
from vlp_sweep.space.entries import is_entry, parse_param
from vlp_sweep.space.health_section import parse_health
from vlp_sweep.space.params import Param
from vlp_sweep.space.sections import (
    Baseline,
    check_keys,
    get_bool,
    get_int,
    get_str,
    metric_name,
    parse_confirm,
    parse_metric_table,
    parse_resources,
    parse_scheduler,
    parse_search_alg,
    parse_targets,
    parse_wandb,
    section,
)
from vlp_sweep.space.spec import TOP_KEYS, SweepSpec
from vlp_sweep.space.yaml_lines import Where, line_of, load_yaml

SWEEP_FIXED = ("run.out_dir", "run.select_metric")  # the driver sets these for every trial


def load_space(path: str | Path) -> SweepSpec:
    """Read a search space YAML file (native or W&B sweep format) into a validated :class:`SweepSpec`.
    The name defaults to the file's stem. Does not look at the data (see ``data_check.check_data``)."""
    data = load_yaml(path)
    return parse_space(data, source=str(path), default_name=Path(path).stem)


def parse_space(data: Any, source: str | None = None, default_name: str | None = None) -> SweepSpec:
    """Plain data (from YAML, JSON or ``spec.to_dict()``) -> :class:`SweepSpec`. A W&B sweep config
    (top-level ``method`` and ``parameters``) is converted first. Mappings that carry YAML line
    numbers (``yaml_lines.LineDict``) give errors with lines; ``source`` names the file in them."""
    from vlp_sweep.space import wandb_format

    where = Where(source)
    if not isinstance(data, Mapping):
        raise where.error("search space", f"expected a mapping of settings, got {type(data).__name__}")
    fmt: str = "native"
    warnings: list[str] = []
    stem = default_name or (Path(source).stem if source else None)
    if wandb_format.is_wandb(data):
        data, warnings = wandb_format.to_native(data, where, stem)
        where, fmt = Where(source, wandb_format.LABELS), "wandb"
    return _Parser(data, where, stem).spec(fmt, warnings)


class _Parser:
    """One pass over a native space; the order matters only where defaults depend on other keys."""

    def __init__(self, data: Mapping[str, Any], where: Where, default_name: str | None) -> None:
        self.d, self.w, self.default_name = data, where, default_name
        self.keys = config_keys()
        self.lines: dict[str, int] = {}
        self.warnings: list[str] = []
        self.checks = Checks(where, self.lines, self.warnings)
        self.factory, self.any_option = BUILTIN_FACTORY, False

    def spec(self, fmt: str, warnings: list[str]) -> SweepSpec:
        check_keys(self.d, "", TOP_KEYS, self.w)
        self.warnings += warnings
        code = self._code()
        base = self._base()
        seeds = self._seeds(base)
        search = self._search(base)
        num_samples, max_conc = self._counts()
        alg = parse_search_alg(section(self.d, "search_alg", self.w), self.w, num_samples, max_conc,
                               any(p.when for p in search))
        self.checks.alg(alg, search, seeds, line_of(self.d, "seeds"))
        metric, mode = self._metric()
        tmp = SweepSpec(name="-", base=tuple(base.items()), search=search)
        sched = parse_scheduler(section(self.d, "scheduler", self.w), self.w, tmp.epochs_range()[1])
        self.checks.seeds_with_asha(sched, seeds, line_of(self.d, "seeds"))
        spec = SweepSpec(
            name=self._name(), description=get_str(self.d, "description", "description", self.w, None) or "",
            base=tuple(sorted(base.items())), search=search, search_alg=alg, scheduler=sched,
            metric=metric, mode=mode, num_samples=num_samples or (1 if alg.type == "grid" else 10),
            max_concurrent=max_conc, resources=parse_resources(section(self.d, "resources", self.w), self.w),
            seeds=seeds, retries=get_int(self.d, "retries", "retries", self.w, 0, lo=0),
            keep_checkpoints=get_int(self.d, "keep_checkpoints", "keep_checkpoints", self.w, 2, lo=1),
            wandb=parse_wandb(section(self.d, "wandb", self.w), self.w), baseline=self._baseline(base),
            targets=parse_targets(section(self.d, "targets", self.w), self.w),
            health=parse_health(section(self.d, "health", self.w), self.w),
            code=code, source=self.w.source, format=fmt, warnings=tuple(self.warnings),
            lines=tuple(self.lines.items()))
        if spec.runs_baseline:
            self._check_baseline_run(spec)
        self._check_micro_floor(spec)
        return self._with_confirm(spec)

    def _with_confirm(self, spec: SweepSpec) -> SweepSpec:
        """The confirmation stage, checked against the search it follows."""
        splits = (str(spec.fixed("data.train_split")), str(spec.fixed("data.eval_split")))
        confirm = parse_confirm(self.d, self.w, spec.num_samples * (spec.grid_size() or 1), spec.seeds, splits)
        if confirm is not None and spec.resources.workers > 1:
            raise self._err("confirm", "the confirmation stage runs one process per trial; it does not support "
                                       "resources.workers > 1 yet (set confirm: none)", line_of(self.d, "confirm"))
        raw = self.d.get("confirm")
        line = line_of(raw, "split") if isinstance(raw, Mapping) else None
        lines = spec.lines + ((("confirm.split", line),) if line else ())
        spec = dataclasses.replace(spec, confirm=confirm, lines=lines)
        if confirm is not None:
            self._check_confirm_runs(spec, raw if isinstance(raw, Mapping) else {})
        return spec

    def _check_confirm_runs(self, spec: SweepSpec, raw: Mapping[str, Any]) -> None:
        """``confirm.ablate`` needs a baseline config to revert to; the stage's runs (configurations x seeds,
        ablations at their most) must fit in ``confirm.max_runs``."""
        conf = spec.confirm
        assert conf is not None
        if conf.ablate and not spec.confirms_baseline:
            raise self._err("confirm.ablate", "needs a baseline config (baseline: {config: {...}}): each ablation "
                                              "reverts one key of the winner to the baseline's value",
                            line_of(raw, "ablate"))
        runs = spec.budget()["confirm_trials"]
        if runs <= conf.max_runs:
            return
        n, configs = len(conf.seeds), conf.top + spec.confirms_baseline
        if conf.ablate:
            what = (f"{configs} configurations and up to {spec.most_ablations()} ablations (the keys a winner can "
                    f"differ from the baseline config in) x {n} seeds")
            key, fix = "confirm.ablate", "raise confirm.max_runs, or search or change fewer keys"
        else:
            what, key, fix = f"{configs} configurations x {n} seeds", "confirm.max_runs", "raise it, or lower top"
        raise self._err(key, f"{what} make up to {runs} confirmation runs, more than confirm.max_runs "
                             f"({conf.max_runs}) allows: {fix}", line_of(raw, "ablate" if conf.ablate else "max_runs"))

    def _check_micro_floor(self, spec: SweepSpec) -> None:
        """The out-of-memory rescue halves a micro-batch down to health.min_micro_batch: a trial starting
        below that floor contradicts it."""
        sizes = [int(v) for v in spec.possible_values("optim.batch_size")]
        if spec.runs_baseline:
            sizes.append(spec.baseline_config().optim.batch_size)
        floor = spec.health.min_micro_batch
        if floor > min(sizes):
            raise self._err("health.min_micro_batch", f"{floor} is above optim.batch_size {min(sizes)}, the "
                                                      "micro-batch a trial starts at",
                            line_of(section(self.d, "health", self.w), "min_micro_batch"))

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

    def _trainer_leaves(self, m: Mapping[str, Any], label: str, leaf: str,
                        entries: bool = False) -> dict[str, tuple[Any, int | None]]:
        """Walk nested and/or dotted trainer keys; ``leaf`` names what a full key holds. With ``entries``
        (the search section) a distribution under a name of its own is a leaf too (a coupled choice)."""
        out: dict[str, tuple[Any, int | None]] = {}

        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for k, v in node.items():
                dotted, line = f"{prefix}{k}", line_of(node, k)
                if dotted in self.keys or is_option_key(dotted) or (entries and is_entry(v)):
                    if dotted in out:
                        raise self._err(f"{label}.{dotted}", "is set twice (nested and dotted)", line)
                    out[dotted] = (v, line)
                elif isinstance(v, Mapping) and (dotted == "model.options"
                                                 or any(key.startswith(f"{dotted}.") for key in self.keys)):
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
        """Fixed trainer values, each checked by the trainer config and normalised ('log(100)' -> 0.01).
        ``model.factory`` comes first: the options are checked against its signature."""
        out: dict[str, Any] = {}
        leaves = self._trainer_leaves(m, label, "value")
        for key in sorted(leaves, key=lambda k: k != "model.factory"):
            v, line = leaves[key]
            self.lines[f"{label}.{key}"] = line or 0
            if isinstance(v, (Mapping, list)):
                hint = " (distributions go under search)" if label == "base" else ""
                raise self._err(f"{label}.{key}", f"expected a single value, got {v!r}{hint}", line)
            if key == "model.factory" and label != "base":
                raise self._err(f"{label}.{key}", "one model per sweep: set model.factory in base", line)
            try:
                out[key] = make_config({"model.factory": self.factory}, {key: v}).flat()[key]
                if key == "model.factory":
                    self._use_factory(out[key])
            except LinkedKeysError:  # fine alone; the pair is checked with the whole space (Checks.linked)
                out[key] = resolve_value(key, v)
            except UserError as e:
                raise self._err(f"{label}.{key}", strip_key(str(e), key), line) from None
        return out

    def _base(self) -> dict[str, Any]:
        base = self._config_values(section(self.d, "base", self.w), "base")
        for key in SWEEP_FIXED:
            if key in base:
                self.warnings.append(f"base.{key} is ignored: the sweep sets it for every trial")
        return base

    def _use_factory(self, factory: str) -> None:
        """The space's model factory: its options become keys the search can name (model.options.NAME)."""
        self.factory = factory
        keys, self.any_option = option_keys(factory)
        self.keys = {**self.keys, **keys}
        self.checks.keys.update(keys)

    def _code(self) -> tuple[str, ...]:
        """``code``: folders to import the model factory from (relative to the space file's folder), put
        on sys.path here and in every trial (a cluster gets the factory's module shipped, see driver)."""
        raw = self.d.get("code", [])
        raw = [raw] if isinstance(raw, str) else raw
        line = line_of(self.d, "code")
        if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
            raise self._err("code", f"expected a folder or a list of folders, got {self.d.get('code')!r}", line)
        root = Path(self.w.source).parent if self.w.source else Path.cwd()
        paths = tuple(str((root / p).resolve()) for p in raw)
        for p in paths:
            if self.w.source and not Path(p).is_dir():
                raise self._err("code", f"folder not found: {p}", line)
        add_import_paths(paths)
        return paths

    def _check_options_given(self, base: dict[str, Any], search: tuple[Param, ...]) -> None:
        """Every option of the factory without a default is fixed in base or searched."""
        given = {k.split(".", 2)[2] for k in base if is_option_key(k)}
        given |= {k.split(".", 2)[2] for p in search for k in p.sets() if is_option_key(k)}
        try:
            check_required(self.factory, given)
        except UserError as e:
            raise self._err("base", str(e), line_of(self.d, "base")) from None

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
        for key, (entry, line) in self._trainer_leaves(m, "search", "distribution", entries=True).items():
            self.lines[f"search.{key}"] = line or 0
            if key == "run.seed":
                raise self._err("search.run.seed", "use seeds: [...] to repeat trials over seeds", line)
            if "/" in key or key.startswith("__"):
                raise self._err(f"search.{key}", "a name of a choice may hold no '/' and not start with '__'", line)
            if key == "model.factory":
                raise self._err("search.model.factory", "one model per sweep: set model.factory in base (search "
                                                        "its model.options.NAME)", line)
            self._known_option(key, line)
            params.append(parse_param(key, entry, self.w, line, self.keys))
        search = tuple(params)
        self._check_options_given(base, search)
        self.checks.overlaps(search, base)
        for p in search:
            self.checks.points(p, base)
        self.checks.conditions(search)
        self.checks.linked(search, base)
        return search

    def _known_option(self, key: str, line: int | None) -> None:
        """A searched model.options.NAME must be one the factory takes (any, with ``**kwargs``)."""
        if not is_option_key(key) or key in self.keys:
            return
        if self.any_option:
            self.keys = {**self.keys, key: {"type": "any", "default": None}}
            self.checks.keys[key] = self.keys[key]
            return
        name = key.split(".", 2)[2]
        options = [k.split(".", 2)[2] for k in self.keys if is_option_key(k)]
        what = "the built-in model takes no model.options" if self.factory == BUILTIN_FACTORY else \
            f"model.factory {self.factory!r} takes no option '{name}'{did_you_mean(name, options)}"
        raise self._err(f"search.{key}", what, line)

    # ------------------------------------------------------------ the rest

    def _counts(self) -> tuple[int | None, int]:
        ns = self.d.get("num_samples")
        num_samples = None if ns is None else get_int(self.d, "num_samples", "num_samples", self.w, 1, lo=1)
        return num_samples, get_int(self.d, "max_concurrent", "max_concurrent", self.w, 2, lo=1)

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
            self.checks.fixed_pair(config, "baseline.config", under=base)
        name = get_str(m, "name", "baseline.name", self.w, "baseline")
        run = get_bool(m, "run", "baseline.run", self.w, False)
        if run and not config:
            raise self._err("baseline.run", "needs baseline.config: the trainer settings to run",
                            line_of(m, "run"))
        return Baseline(name=name, metrics=metrics, config=tuple(sorted(config.items())), run=run)

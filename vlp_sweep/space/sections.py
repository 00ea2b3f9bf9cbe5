"""The small sections of a search space (search_alg, scheduler, resources, wandb, baseline, targets):
frozen dataclasses with their defaults, and parsers whose errors name the key and the YAML line.

Dict-like data is kept as tuples of pairs so that a spec stays immutable and picklable (Ray pickles
the Optuna searcher with the spec, and hands the spec to every trial).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlp_sweep.errors import did_you_mean
from vlp_sweep.metric_names import METRIC_NAMES
from vlp_sweep.space.yaml_lines import Where, line_of

Pairs = tuple[tuple[str, Any], ...]
SEARCH_ALGS = ("optuna", "random", "grid")
SCHEDULERS = ("asha", "none")
WANDB_MODES = ("offline", "online", "disabled")


# ---------------------------------------------------------------- typed getters


def check_keys(m: Mapping[str, Any], label: str, allowed: tuple[str, ...], where: Where,
               why: str = "") -> None:
    """Unknown keys of a section are errors with a 'did you mean'."""
    for k in m:
        if k not in allowed:
            hint = did_you_mean(str(k), allowed) or f" (expected one of {', '.join(allowed)})"
            raise where.error(f"{label}.{k}" if label else str(k), f"unknown key{why}{hint}", line_of(m, k))


def section(m: Mapping[str, Any], key: str, where: Where) -> Mapping[str, Any]:
    """A nested mapping (empty when absent or null)."""
    v = m.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise where.error(key, f"expected a mapping, got {v!r}", line_of(m, key))
    return v


def get_int(m: Mapping[str, Any], key: str, label: str, where: Where, default: int,
            lo: int | None = None) -> int:
    v = m.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool):
        raise where.error(label, f"expected an integer, got {v!r}", line_of(m, key))
    if lo is not None and v < lo:
        raise where.error(label, f"must be >= {lo}, got {v}", line_of(m, key))
    return v


def get_num(m: Mapping[str, Any], key: str, label: str, where: Where, default: float, lo: float | None = None,
            lo_open: bool = False) -> float:
    v = m.get(key, default)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise where.error(label, f"expected a number, got {v!r}", line_of(m, key))
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise where.error(label, f"must be {'>' if lo_open else '>='} {lo}, got {v}", line_of(m, key))
    return v


def get_bool(m: Mapping[str, Any], key: str, label: str, where: Where, default: bool) -> bool:
    v = m.get(key, default)
    if not isinstance(v, bool):
        raise where.error(label, f"expected true or false, got {v!r}", line_of(m, key))
    return v


def get_str(m: Mapping[str, Any], key: str, label: str, where: Where, default: str | None,
            choices: tuple[str, ...] = ()) -> Any:
    v = m.get(key, default)
    if v is None and default is None:
        return None
    if not isinstance(v, str):
        raise where.error(label, f"expected a string, got {v!r}", line_of(m, key))
    if choices and v not in choices:
        raise where.error(label, f"must be one of {', '.join(choices)}; got {v!r}{did_you_mean(v, choices)}",
                          line_of(m, key))
    return v


def metric_name(v: Any, label: str, where: Where, line: int | None) -> str:
    if v not in METRIC_NAMES:
        hint = did_you_mean(str(v), METRIC_NAMES)
        raise where.error(label, f"'{v}' is not a metric the trainer reports{hint} "
                                 f"(metrics: {', '.join(METRIC_NAMES)})", line)
    return str(v)


# ---------------------------------------------------------------- search_alg


@dataclass(frozen=True)
class SearchAlg:
    """How configs are proposed. optuna = TPE, every setting explicit (see ``SweepSpec.optuna_sampler``)."""

    type: str = "optuna"
    seed: int = 0
    n_startup_trials: int = 10  # random trials before TPE models the results
    n_ei_candidates: int = 24  # candidates scored per suggestion
    multivariate: bool = True  # joint density over params (better than independent TPE)
    group: bool = False  # multivariate TPE per group of params sampled together (conditional spaces)
    constant_liar: bool = True  # running trials count as bad results, so parallel trials spread out

    def to_dict(self) -> dict[str, Any]:
        if self.type == "grid":
            return {"type": "grid"}
        if self.type == "random":
            return {"type": "random", "seed": self.seed}
        return {"type": self.type, "seed": self.seed, "n_startup_trials": self.n_startup_trials,
                "n_ei_candidates": self.n_ei_candidates, "multivariate": self.multivariate,
                "group": self.group, "constant_liar": self.constant_liar}

    def describe(self) -> str:
        if self.type == "grid":
            return "grid (every combination of grid/choice values)"
        if self.type == "random":
            return f"random (seed {self.seed})"
        flags = [f for f in ("multivariate", "group", "constant_liar") if getattr(self, f)]
        off = [f for f in ("multivariate", "group", "constant_liar") if not getattr(self, f)]
        return (f"optuna TPE (seed {self.seed}, n_startup_trials {self.n_startup_trials}, n_ei_candidates "
                f"{self.n_ei_candidates}; on: {', '.join(flags) or '-'}; off: {', '.join(off) or '-'})")


def parse_search_alg(m: Mapping[str, Any], where: Where, num_samples: int | None, max_concurrent: int,
                     conditional: bool) -> SearchAlg:
    """Defaults depend on the space: n_startup_trials about half of a small budget (at most 10),
    constant_liar only when trials run in parallel, group only for conditional spaces."""
    typ = get_str(m, "type", "search_alg.type", where, "optuna", SEARCH_ALGS)
    allowed = {"grid": ("type",), "random": ("type", "seed")}.get(typ, tuple(SearchAlg.__dataclass_fields__))
    check_keys(m, "search_alg", allowed, where, f" for type {typ}")
    seed = get_int(m, "seed", "search_alg.seed", where, 0, lo=0)
    if typ != "optuna":
        return SearchAlg(type=typ, seed=seed)
    n = num_samples or 10
    multi = get_bool(m, "multivariate", "search_alg.multivariate", where, True)
    group = get_bool(m, "group", "search_alg.group", where, multi and conditional)
    if group and not multi:
        raise where.error("search_alg.group", "needs multivariate: true", line_of(m, "group"))
    return SearchAlg(
        type=typ, seed=seed,
        n_startup_trials=get_int(m, "n_startup_trials", "search_alg.n_startup_trials", where,
                                 max(2, min(10, n // 2)), lo=0),
        n_ei_candidates=get_int(m, "n_ei_candidates", "search_alg.n_ei_candidates", where, 24, lo=1),
        multivariate=multi, group=group,
        constant_liar=get_bool(m, "constant_liar", "search_alg.constant_liar", where, max_concurrent > 1))


# ---------------------------------------------------------------- scheduler


@dataclass(frozen=True)
class Scheduler:
    """Early stopping on the ``epoch`` of each evaluation. ASHA: a trial reaching a rung (grace_period *
    reduction_factor^k epochs) continues only if it is in the top 1/reduction_factor there."""

    type: str = "asha"
    grace_period: int = 1  # epochs every trial gets before it can be stopped
    reduction_factor: float = 2.0  # keep the top 1/reduction_factor at each rung
    max_t: int = 0  # epochs at which ASHA stops any trial (resolved: the trial's max epochs)

    def to_dict(self) -> dict[str, Any]:
        if self.type == "none":
            return {"type": "none"}
        return {"type": self.type, "grace_period": self.grace_period,
                "reduction_factor": self.reduction_factor, "max_t": self.max_t}

    def describe(self) -> str:
        if self.type == "none":
            return "none (every trial runs all its epochs)"
        return (f"ASHA on epoch (grace_period {self.grace_period}, "
                f"reduction_factor {self.reduction_factor:g}, max_t {self.max_t})")


def parse_scheduler(m: Mapping[str, Any], where: Where, max_epochs: int) -> Scheduler:
    typ = get_str(m, "type", "scheduler.type", where, "asha", SCHEDULERS)
    check_keys(m, "scheduler", ("type",) if typ == "none" else tuple(Scheduler.__dataclass_fields__), where,
               f" for type {typ}")
    if typ == "none":
        return Scheduler(type="none", max_t=max_epochs)
    max_t = get_int(m, "max_t", "scheduler.max_t", where, max_epochs, lo=1)
    grace = get_int(m, "grace_period", "scheduler.grace_period", where, 1, lo=1)
    if grace > max_t:
        raise where.error("scheduler.grace_period", f"{grace} exceeds max_t = {max_t} epochs: no trial could "
                                                    f"ever be stopped", line_of(m, "grace_period"))
    rf = get_num(m, "reduction_factor", "scheduler.reduction_factor", where, 2, lo=1, lo_open=True)
    return Scheduler(type="asha", grace_period=grace, reduction_factor=float(rf), max_t=max_t)


# ---------------------------------------------------------------- resources, wandb


@dataclass(frozen=True)
class Resources:
    """Per trial; a fractional gpu (0.25, 0.5) packs several trials onto one GPU. ``workers`` > 1 makes
    a trial data-parallel over that many processes (Ray Train), each with ``cpu`` and ``gpu / workers``;
    a trial asking for several whole GPUs gets one process per GPU unless ``workers`` says otherwise."""

    cpu: float = 1
    gpu: float = 0
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "gpu": self.gpu, "workers": self.workers}

    def per_worker(self) -> tuple[float, float]:
        """(CPUs, GPUs) of each training process."""
        return self.cpu, self.gpu / self.workers


def parse_resources(m: Mapping[str, Any], where: Where) -> Resources:
    check_keys(m, "resources", ("cpu", "gpu", "workers"), where)
    cpu = get_num(m, "cpu", "resources.cpu", where, 1, lo=0)
    gpu = get_num(m, "gpu", "resources.gpu", where, 0, lo=0)
    if gpu > 1 and gpu != int(gpu):
        raise where.error("resources.gpu", f"above 1 a trial needs whole GPUs, got {gpu}", line_of(m, "gpu"))
    workers = get_int(m, "workers", "resources.workers", where, int(gpu) if gpu > 1 else 1, lo=1)
    if gpu > 1 and gpu % workers:
        raise where.error("resources.workers", f"{workers} processes cannot share {gpu:g} GPUs evenly",
                          line_of(m, "workers"))
    return Resources(cpu=cpu, gpu=gpu, workers=workers)


@dataclass(frozen=True)
class WandbSettings:
    """Weights & Biases logging of every trial (offline runs sync later with ``wandb sync``)."""

    mode: str = "offline"
    project: str = "vlp-sweep"
    entity: str | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "project": self.project, "entity": self.entity, "tags": list(self.tags)}


def parse_wandb(m: Mapping[str, Any], where: Where) -> WandbSettings:
    check_keys(m, "wandb", tuple(WandbSettings.__dataclass_fields__), where)
    tags = m.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise where.error("wandb.tags", f"expected a list of strings, got {tags!r}", line_of(m, "tags"))
    return WandbSettings(mode=get_str(m, "mode", "wandb.mode", where, "offline", WANDB_MODES),
                         project=get_str(m, "project", "wandb.project", where, "vlp-sweep"),
                         entity=get_str(m, "entity", "wandb.entity", where, None), tags=tuple(tags))


# ---------------------------------------------------------------- baseline, targets


@dataclass(frozen=True)
class Baseline:
    """A reference point for reports: known metrics and/or a reference trainer config (flat dotted keys)."""

    name: str = "baseline"
    metrics: Pairs = ()
    config: Pairs = ()
    run: bool = False  # run base + config as one more trial (never early-stopped, unseen by the searcher)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.run:
            out["run"] = True
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        if self.config:
            out["config"] = dict(self.config)
        return out


def parse_metric_table(m: Any, label: str, where: Where, line: int | None) -> Pairs:
    """``{metric: number}`` with metric names checked."""
    if not isinstance(m, Mapping) or not m:
        raise where.error(label, f"expected a mapping of metric: value, got {m!r}", line)
    out = []
    for k in m:
        metric_name(k, f"{label}.{k}", where, line_of(m, k))
        out.append((str(k), float(get_num(m, k, f"{label}.{k}", where, 0))))
    return tuple(out)


def parse_targets(m: Mapping[str, Any], where: Where) -> tuple[tuple[str, Pairs], ...]:
    """``{level: {metric: number}}``, e.g. good / excellent."""
    return tuple((str(level), parse_metric_table(table, f"targets.{level}", where, line_of(m, level)))
                 for level, table in m.items())


# ---------------------------------------------------------------- confirm


MAX_RUNS = 40  # confirm.max_runs' default: the most confirmation runs (configurations x seeds) a stage may start


@dataclass(frozen=True)
class Confirm:
    """The confirmation stage after the search: the ``top`` configurations by the sweep's metric (and the
    baseline config, where the space has one) trained again with each of ``seeds`` (fresh: none of the
    search's), for their full budget with no early stopping; each picks its epoch on the eval split and is
    evaluated once on ``split``, a split the search never looked at. With ``ablate``, the winner's every key
    that differs from the baseline config is reverted one at a time and trained with the same seeds (which
    change earned the gain). ``max_runs`` bounds the stage's runs, ablations included."""

    top: int = 2
    seeds: tuple[int, ...] = (1, 2)
    split: str = "test"
    ablate: bool = False
    max_runs: int = MAX_RUNS

    def to_dict(self) -> dict[str, Any]:
        # ablate and max_runs only when set: a space of an earlier version keeps its fingerprint
        extra: dict[str, Any] = {"ablate": True} if self.ablate else {}
        extra |= {"max_runs": self.max_runs} if self.max_runs != MAX_RUNS else {}
        return {"top": self.top, "seeds": list(self.seeds), "split": self.split, **extra}

    def describe(self) -> str:
        ablate = "; then the winner's keys reverted to the baseline's one at a time" if self.ablate else ""
        return (f"top {self.top} x seeds {list(self.seeds)}, full budget, no early stopping; epoch picked on "
                f"the eval split, then evaluated once on the {self.split} split{ablate}")


def parse_confirm(d: Mapping[str, Any], where: Where, configs: int, search_seeds: tuple[int, ...],
                  splits: tuple[str, str]) -> Confirm | None:
    """``confirm: {top, seeds, split, ablate, max_runs}``, or ``confirm: none`` (also null or absent) for no stage.
    ``configs``: how many configurations the search samples (top may not exceed it); ``splits``: the
    trainer's (train, eval) splits, which the held-out split must differ from."""
    raw = d.get("confirm")
    if raw is None or raw == "none":
        return None
    line = line_of(d, "confirm")
    if not isinstance(raw, Mapping):
        raise where.error("confirm", f"expected {{top: K, seeds: [...], split: test}} or none, got {raw!r}", line)
    check_keys(raw, "confirm", ("top", "seeds", "split", "ablate", "max_runs"), where)
    top = get_int(raw, "top", "confirm.top", where, 2, lo=1)
    if top > configs:
        raise where.error("confirm.top", f"{top} is more than the {configs} configurations the search samples",
                          line_of(raw, "top"))
    seeds = raw.get("seeds", [1, 2])
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        raise where.error("confirm.seeds", f"expected a non-empty list of integers >= 0, got {seeds!r}",
                          line_of(raw, "seeds"))
    if len(set(seeds)) != len(seeds):
        raise where.error("confirm.seeds", f"lists a seed twice: {seeds}", line_of(raw, "seeds"))
    reused = sorted(set(seeds) & set(search_seeds))
    if reused:
        verb = "seeds" if len(reused) == 1 else "seed"
        raise where.error("confirm.seeds", f"must be fresh seeds, but {reused} also {verb} the search "
                                           f"(seeds: {list(search_seeds)})", line_of(raw, "seeds"))
    split = get_str(raw, "split", "confirm.split", where, "test")
    if split in splits:
        raise where.error("confirm.split", f"'{split}' is the {'training' if split == splits[0] else 'eval'} "
                                           "split; the confirmation needs a held-out split (e.g. test)",
                          line_of(raw, "split"))
    ablate = get_bool(raw, "ablate", "confirm.ablate", where, False)
    max_runs = get_int(raw, "max_runs", "confirm.max_runs", where, MAX_RUNS, lo=1)
    return Confirm(top=top, seeds=tuple(seeds), split=split, ablate=ablate, max_runs=max_runs)

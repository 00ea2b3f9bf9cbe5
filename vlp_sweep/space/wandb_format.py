"""Read a W&B sweep config as it is, by converting it into the native format.

Detected by a top-level ``method`` and ``parameters``. What maps where:

    method: grid | random | bayes          -> search_alg type grid | random | optuna (TPE)
    metric: {name, goal}                   -> metric, mode (maximize -> max, minimize -> min)
    parameters                             -> base and search (every W&B distribution: below)
    early_terminate: {type: hyperband, min_iter, eta[, max_iter]}
                                           -> scheduler asha (grace_period, reduction_factor, max_t);
                                              without it: scheduler none
    run_cap                                -> num_samples (ignored for grid: the grid runs once)
    name, description                      -> name (a display name such as 'vlp/phase 1' becomes the
                                              folder name vlp-phase-1), description
    project, entity                        -> wandb.project, wandb.entity

Native keys that W&B has no word for (resources, max_concurrent, seeds, retries,
keep_checkpoints, search_alg, wandb, baseline, targets, code) may be added and pass through. Other keys
(program, command, ...) are ignored with a warning.

W&B's ``parameters`` -> the native ``base`` and ``search`` sections, every distribution W&B documents:

    {value: v} (distribution: constant)          -> base K = v
    {values: [...]} (categorical)                 -> choice (grid under method grid); values that are
                                                     mappings -> a coupled choice (each sets several keys)
    {values, probabilities} (method random only)  -> choice with probabilities
    int_uniform / uniform {min, max}              -> int / uniform (no distribution: int when both are ints)
    q_uniform {min, max, q}                       -> uniform (int) with step q, bounds rounded to multiples of q
    log_uniform_values / inv_log_uniform_values   -> loguniform [min, max] (1/X of a log-uniform X is one too)
    log_uniform / inv_log_uniform (min, max: natural logs) -> loguniform [e^min, e^max] / [e^-max, e^-min]
    q_log_uniform_values / q_log_uniform          -> loguniform rounded to multiples of q
    normal / log_normal {mu, sigma} / beta {a, b} (+ q_ variants) -> normal / lognormal / beta (+ step q)
    {parameters: {...}}                           -> nested keys, dotted (optim.lr)

W&B's defaults apply (mu 0, sigma 1, a 1, b 1, q 1). Keys a distribution does not take are errors, as
in W&B's own schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from vlp_sweep.errors import did_you_mean
from vlp_sweep.metric_names import MODE
from vlp_sweep.space.distributions import is_number
from vlp_sweep.space.yaml_lines import LineDict, Where, line_of

# Errors after conversion name the W&B section, not the native one.
LABELS = {"search": "parameters", "base": "parameters"}
METHODS = {"grid": "grid", "random": "random", "bayes": "optuna"}
HANDLED = ("method", "metric", "parameters", "early_terminate", "run_cap", "name", "description", "project",
           "entity")
PASSTHROUGH = ("resources", "max_concurrent", "seeds", "retries", "keep_checkpoints", "search_alg", "wandb",
               "baseline", "targets", "code")
DEFAULT_SAMPLES = 10
LOG = ("log_uniform", "inv_log_uniform", "q_log_uniform")  # min/max are natural logs
TAKES = {  # distribution -> the keys it takes besides distribution (W&B's schema)
    "constant": ("value",), "categorical": ("values", "probabilities"),
    "categorical_w_probabilities": ("values", "probabilities"), "int_uniform": ("min", "max"),
    "uniform": ("min", "max"), "q_uniform": ("min", "max", "q"), "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"), "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"), "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"), "normal": ("mu", "sigma"), "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"), "q_log_normal": ("mu", "sigma", "q"), "beta": ("a", "b"),
    "q_beta": ("a", "b", "q")}
WANDB_DISTRIBUTIONS = tuple(TAKES)
PARAM_KEYS = ("value", "values", "distribution", "min", "max", "q", "probabilities", "mu", "sigma", "a", "b",
              "parameters")
SHAPED = {"normal": ("normal", "mu", "sigma", 0.0, 1.0), "log_normal": ("lognormal", "mu", "sigma", 0.0, 1.0),
          "beta": ("beta", "a", "b", 1.0, 1.0)}


def is_wandb(data: Any) -> bool:
    """A W&B sweep config has a top-level ``method`` and ``parameters`` (the native format has neither)."""
    return isinstance(data, Mapping) and "method" in data and "parameters" in data


def to_native(doc: Mapping[str, Any], where: Where, stem: str | None = None) -> tuple[LineDict, list[str]]:
    """W&B sweep config -> (native space data keeping the W&B lines, warnings). ``stem`` (the file's)
    names the sweep when its W&B name leaves nothing usable as a folder name."""
    out, warnings = LineDict(line=getattr(doc, "line", None)), []
    for k in doc:
        if k in PASSTHROUGH:
            out.put(k, doc[k], line_of(doc, k))
        elif k not in HANDLED:
            warnings.append(f"ignored W&B key '{k}'{_at(doc, k)}")
    method = _method(doc, out, where)
    _metric(doc, out, where, warnings)
    base, search = LineDict(line=line_of(doc, "parameters")), LineDict(line=line_of(doc, "parameters"))
    convert_parameters(doc["parameters"], "", method, where, base, search, warnings)
    out.put("base", base, line_of(doc, "parameters"))
    out.put("search", search, line_of(doc, "parameters"))
    _early_terminate(doc, out, where, warnings)
    _run_cap(doc, out, method, where, warnings)
    if "description" in doc:
        out.put("description", doc["description"], line_of(doc, "description"))
    if "name" in doc:
        out.put("name", _folder_name(doc["name"], stem, warnings), line_of(doc, "name"))
    _wandb(doc, out, where)
    return out, warnings


def folder_name(display: str) -> str:
    """A W&B display name -> a plain folder name: runs of anything but letters, digits, '.', '_', '-'
    become one '-' ('vlp/phase 1' -> 'vlp-phase-1'); no leading '.' or '-'; '..' becomes '.'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", display)
    name = re.sub(r"\.{2,}", ".", name)
    return name.strip(".-")


def _folder_name(name: Any, stem: str | None, warnings: list[str]) -> Any:
    """W&B's name is a display name (any text); the sweep's name is a folder under runs/."""
    if not isinstance(name, str) or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._ -]*", name) and ".." not in name:
        return name  # already a plain folder name (or not a string: the parser says so)
    folder = folder_name(name) or stem
    if folder:
        warnings.append(f"W&B name {name!r} is a display name: the sweep's folder is runs/{folder}")
    return folder or name


def _at(m: Any, k: Any) -> str:
    line = line_of(m, k)
    return f" (line {line})" if line else ""


def _method(doc: Mapping[str, Any], out: LineDict, where: Where) -> str:
    method = doc["method"]
    if method not in METHODS:
        raise where.error("method", f"must be one of {', '.join(METHODS)}; got {method!r}"
                                    f"{did_you_mean(str(method), METHODS)}", line_of(doc, "method"))
    alg = LineDict(line=line_of(doc, "method"))
    given = doc.get("search_alg")
    if isinstance(given, Mapping):  # native extras such as a seed ride along
        for k, v in given.items():
            alg.put(k, v, line_of(given, k))
    if alg.get("type", METHODS[method]) != METHODS[method]:
        raise where.error("search_alg.type", f"conflicts with method: {method}", line_of(given, "type"))
    alg.put("type", METHODS[method], line_of(doc, "method"))
    out.put("search_alg", alg, line_of(doc, "method"))
    return str(method)


def _metric(doc: Mapping[str, Any], out: LineDict, where: Where, warnings: list[str]) -> None:
    m = doc.get("metric")
    if m is None:
        return
    if not isinstance(m, Mapping) or "name" not in m:
        raise where.error("metric", f"expected {{name: ..., goal: maximize|minimize}}, got {m!r}",
                          line_of(doc, "metric"))
    out.put("metric", m["name"], line_of(m, "name"))
    goals = {"maximize": "max", "minimize": "min"}
    if "goal" in m:
        if m["goal"] not in goals:
            raise where.error("metric.goal", f"must be maximize or minimize, got {m['goal']!r}",
                              line_of(m, "goal"))
        out.put("mode", goals[m["goal"]], line_of(m, "goal"))
    elif MODE.get(m["name"]) == "max":
        warnings.append(f"metric.goal is missing: W&B would minimize, this sweep maximizes {m['name']}")
    for k in m:
        if k not in ("name", "goal"):
            warnings.append(f"ignored W&B key 'metric.{k}'{_at(m, k)}")


def _early_terminate(doc: Mapping[str, Any], out: LineDict, where: Where, warnings: list[str]) -> None:
    et = doc.get("early_terminate")
    if et is None:
        out.put("scheduler", {"type": "none"}, None)  # W&B without early_terminate stops nothing early
        return
    if not isinstance(et, Mapping) or et.get("type") != "hyperband":
        got = et.get("type") if isinstance(et, Mapping) else et
        raise where.error("early_terminate.type", f"only hyperband is supported (as ASHA), got {got!r}",
                          line_of(doc, "early_terminate"))
    eta = et.get("eta", 3)
    sched = LineDict(line=line_of(doc, "early_terminate"))
    sched.put("type", "asha", line_of(et, "type"))
    sched.put("reduction_factor", eta, line_of(et, "eta"))
    if "max_iter" in et:
        sched.put("max_t", et["max_iter"], line_of(et, "max_iter"))
    if "min_iter" in et:
        sched.put("grace_period", et["min_iter"], line_of(et, "min_iter"))
    elif "max_iter" in et and "s" in et:  # W&B's other spelling: brackets below max_iter
        ok = all(isinstance(et[k], (int, float)) and not isinstance(et[k], bool)
                 for k in ("max_iter", "s", "eta") if k in et)
        if not ok or eta <= 1:
            raise where.error("early_terminate", "max_iter, s and eta must be numbers (eta > 1)",
                              line_of(doc, "early_terminate"))
        sched.put("grace_period", max(1, round(et["max_iter"] / eta ** et["s"])), line_of(et, "s"))
    else:
        raise where.error("early_terminate", "hyperband needs min_iter (or max_iter and s)",
                          line_of(doc, "early_terminate"))
    for k in et:
        if k not in ("type", "eta", "min_iter", "max_iter", "s"):
            warnings.append(f"ignored W&B key 'early_terminate.{k}'{_at(et, k)}")
    out.put("scheduler", sched, line_of(doc, "early_terminate"))


def _run_cap(doc: Mapping[str, Any], out: LineDict, method: str, where: Where, warnings: list[str]) -> None:
    if method == "grid":
        if "run_cap" in doc:
            warnings.append(f"run_cap{_at(doc, 'run_cap')} is ignored for method grid: the whole grid runs "
                            "once")
        return
    if "run_cap" in doc:
        out.put("num_samples", doc["run_cap"], line_of(doc, "run_cap"))
    else:
        warnings.append(f"no run_cap: W&B would run until stopped; this sweep runs {DEFAULT_SAMPLES} trials")
        out.put("num_samples", DEFAULT_SAMPLES, None)


def _wandb(doc: Mapping[str, Any], out: LineDict, where: Where) -> None:
    given = doc.get("wandb")
    w = LineDict(line=line_of(doc, "wandb"))
    if isinstance(given, Mapping):
        for k, v in given.items():
            w.put(k, v, line_of(given, k))
    elif given is not None:
        raise where.error("wandb", f"expected a mapping, got {given!r}", line_of(doc, "wandb"))
    for k in ("project", "entity"):
        if k in doc:
            if k in w:
                raise where.error(k, f"given twice (top-level and wandb.{k})", line_of(doc, k))
            w.put(k, doc[k], line_of(doc, k))
    out.put("wandb", w, line_of(doc, "wandb") or line_of(doc, "project"))


# ---------------------------------------------------------------- parameters


def convert_parameters(m: Any, prefix: str, method: str, where: Where, base: LineDict, search: LineDict,
                       warnings: list[str]) -> None:
    """Walk ``parameters`` (nested ones too) into ``base`` (constants) and ``search`` (native entries)."""
    if not isinstance(m, Mapping) or not m:
        raise where.error(f"parameters{'.' + prefix.rstrip('.') if prefix else ''}",
                          f"expected a mapping of parameters, got {m!r}", getattr(m, "line", None))
    for name, spec in m.items():
        key, line = f"{prefix}{name}", line_of(m, name)
        label = f"parameters.{key}"
        if not isinstance(spec, Mapping):
            raise where.error(label, "expected {value: v}, {values: [...]} or {distribution: .., min: .., "
                                     f"max: ..}}, got {spec!r}", line)
        for k in spec:
            if k not in PARAM_KEYS:
                hint = did_you_mean(str(k), PARAM_KEYS)
                raise where.error(f"{label}.{k}", f"unknown W&B parameter key{hint}", line_of(spec, k))
        if "parameters" in spec:
            if len(spec) > 1:
                raise where.error(label, "nested parameters take no other keys", line)
            convert_parameters(spec["parameters"], f"{key}.", method, where, base, search, warnings)
            continue
        entry = _convert(spec, label, method, where, line, warnings)
        if entry is None:
            base.put(key, spec.get("value"), line)
        else:
            search.put(key, entry, line)


def _convert(spec: Mapping[str, Any], label: str, method: str, where: Where, line: int | None,
             warnings: list[str]) -> LineDict | None:
    """One W&B parameter -> a native search entry, or None for a fixed value."""
    dist = spec.get("distribution") or _infer(spec, label, where, line)
    if dist not in WANDB_DISTRIBUTIONS:
        raise where.error(f"{label}.distribution", f"unknown W&B distribution {dist!r}"
                                                   f"{did_you_mean(str(dist), WANDB_DISTRIBUTIONS)}", line)
    for k in spec:
        if k not in (*TAKES[dist], "distribution"):
            raise where.error(f"{label}.{k}", f"is not used by W&B distribution {dist}"
                                              f" (it takes {', '.join(TAKES[dist])})", line_of(spec, k))
    if dist == "constant":
        if "value" not in spec:
            raise where.error(label, "distribution constant needs value", line)
        return None
    if dist.startswith("categorical"):
        return _categorical(spec, label, method, where, line)
    if dist in SHAPED or dist[2:] in SHAPED:
        return _shaped(spec, dist, label, line)
    if "min" not in spec or "max" not in spec:
        raise where.error(label, f"distribution {dist} needs min and max", line)
    lo, hi = spec["min"], spec["max"]
    for v in (lo, hi):
        if not is_number(v):
            raise where.error(label, f"{dist} needs numbers for min and max, got {v!r}", line)
    if dist in LOG:  # natural logs of the bounds
        lo, hi = (math.exp(-hi), math.exp(-lo)) if dist == "inv_log_uniform" else (math.exp(lo), math.exp(hi))
    if dist in ("int_uniform", "uniform"):
        return _entry({"int" if dist == "int_uniform" else "uniform": [lo, hi]}, line)
    if dist == "q_uniform":
        return _q_uniform(lo, hi, spec.get("q", 1), label, line, warnings)
    if dist.startswith("q_"):
        return _entry({"loguniform": [lo, hi], "step": spec.get("q", 1)}, line)
    return _entry({"loguniform": [lo, hi]}, line)


def _categorical(spec: Mapping[str, Any], label: str, method: str, where: Where, line: int | None) -> LineDict:
    if "values" not in spec:
        raise where.error(label, "categorical needs values: [...]", line)
    entry: dict[str, Any] = {"grid" if method == "grid" else "choice": spec["values"]}
    if "probabilities" in spec:
        if method != "random":
            raise where.error(f"{label}.probabilities", f"W&B takes probabilities with method random only, not "
                                                        f"{method}", line_of(spec, "probabilities"))
        entry["probabilities"] = spec["probabilities"]
    return _entry(entry, line)


def _shaped(spec: Mapping[str, Any], dist: str, label: str, line: int | None) -> LineDict:
    kind, a, b, a0, b0 = SHAPED[dist.removeprefix("q_")]
    entry: dict[str, Any] = {kind: [spec.get(a, a0), spec.get(b, b0)]}
    if dist.startswith("q_"):
        entry["step"] = spec.get("q", 1)
    return _entry(entry, line)


def _q_uniform(lo: Any, hi: Any, q: Any, label: str, line: int | None, warnings: list[str]) -> LineDict:
    """W&B rounds every draw to a multiple of q, so the values really lie between the rounded bounds."""
    if not is_number(q) or q <= 0:
        return _entry({"uniform": [lo, hi], "step": q}, line)  # the native check names the bad step
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, q))
    rlo, rhi = (round(v / q) * q for v in (lo, hi))
    rlo, rhi = (int(rlo), int(rhi)) if ints else (float(f"{rlo:.12g}"), float(f"{rhi:.12g}"))
    if (rlo, rhi) != (lo, hi):
        warnings.append(f"{label}: q_uniform rounds every draw to a multiple of q={q}, so its values run from "
                        f"{rlo} to {rhi} (min {lo}, max {hi})")
    # Integer bounds and q: an integer key (W&B would send 10.0 for 10).
    return _entry({"int" if ints else "uniform": [rlo, rhi], "step": q}, line)


def _infer(spec: Mapping[str, Any], label: str, where: Where, line: int | None) -> str:
    """W&B's rule when no distribution is given."""
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    raise where.error(label, "needs value, values, or min and max (with an optional distribution)", line)


def _entry(d: dict[str, Any], line: int | None) -> LineDict:
    out = LineDict(line=line)
    for k, v in d.items():
        out.put(k, v, line)
    return out

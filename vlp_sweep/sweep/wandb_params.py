"""W&B's ``parameters`` -> the native ``base`` and ``search`` sections, every distribution W&B documents.

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
from collections.abc import Mapping
from typing import Any

from vlp_sweep.errors import did_you_mean
from vlp_sweep.sweep.distributions import is_number
from vlp_sweep.sweep.yaml_lines import LineDict, Where, line_of

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

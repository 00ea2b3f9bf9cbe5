"""One native ``search:`` entry -> a :class:`Param`; every problem a one-line error naming the key.

The entries (``step`` quantises, ``when`` makes the key conditional)::

    {choice: [a, b, c]}                       one of the values (random / TPE; search_alg grid enumerates it)
    {choice: [a, b], probabilities: [.7, .3]} a weighted draw (search_alg random only, as in W&B)
    {grid: [a, b, c]}                         every value (Ray grid search; not with Optuna TPE)
    {uniform: [low, high], step: q}           float in [low, high]; optional step (low + k*step)
    {loguniform: [low, high]}                 float, uniform in log space; low > 0 (step: rounded to it)
    {int: [low, high], step: s, log: b}       integer in [low, high] inclusive; optional step or log
    {normal: [mu, sigma], step: q}            normal; lognormal: [mu, sigma] of the log; beta: [a, b]
    name: {choice: [{model.d_model: 256, model.heads: 8}, ...]}   a coupled choice: each value sets
        several trainer keys (nested or dotted, relative to the name's section if it has one); a
        mapping {label: {...}} names the values, a list gets labels from them
    ... when: {other.key: value | [values]}   only drawn / active when the other key has that value

Ranges may also be written ``{low: .., high: ..}`` (``{mu: .., sigma: ..}``, ``{a: .., b: ..}``).
The values themselves are checked by the distribution classes (``distributions``); what the trainer
accepts is checked with the whole space (``checks``).

Listed values (a choice's or grid's, a setting's, a condition's) are put in the trainer's own form here,
once: ``'log(100)'`` becomes 0.01 and ``3`` becomes 3.0 for a float key (``config.resolve_value``), so
that Optuna's choices, the journal, the leaderboard's ``params`` and its config columns hold one number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlp_sweep.config import resolve_value
from vlp_sweep.errors import UserError, did_you_mean
from vlp_sweep.space.distributions import (
    KINDS,
    Beta,
    Choice,
    Distribution,
    Grid,
    Int,
    LogNormal,
    LogUniform,
    Normal,
    QLogUniform,
    Setting,
    Uniform,
    fmt,
    is_number,
    is_scalar,
    need,
)
from vlp_sweep.space.params import Condition, Param
from vlp_sweep.space.yaml_lines import Where, line_of

ENTRY_KEYS = (*KINDS, "step", "log", "probabilities", "when")
PAIR_NAMES = {"normal": ("mu", "sigma"), "lognormal": ("mu", "sigma"), "beta": ("a", "b")}
# The sweep sets these for every trial; a coupled choice may not.
NOT_IN_SETTINGS = ("run.seed", "run.out_dir", "run.select_metric")


def is_entry(v: Any) -> bool:
    """Whether a mapping in ``search:`` is a distribution entry (rather than a section of nested keys)."""
    return isinstance(v, Mapping) and any(k in v for k in KINDS)


def parse_param(key: str, entry: Any, where: Where, line: int | None, keys: Mapping[str, Any]) -> Param:
    """One ``search:`` entry -> :class:`Param`. ``keys`` are the trainer's (``config_keys()``): ``key`` is
    one of them, or the name of a coupled choice."""
    label = f"search.{key}"
    if not isinstance(entry, Mapping):
        raise where.error(label, "expected a distribution such as {choice: [...]} or {uniform: [low, high]}, "
                                 f"got {entry!r} (to fix a value, put it under base)", line)
    for k in entry:
        if k not in ENTRY_KEYS:
            raise where.error(f"{label}.{k}", f"unknown distribution key{did_you_mean(str(k), ENTRY_KEYS)}; "
                                              f"expected one of {', '.join(KINDS)} (+ step, log, probabilities, "
                                              "when)", line_of(entry, k))
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise where.error(label, f"needs exactly one of {', '.join(KINDS)}; got {', '.join(kinds) or 'none'}",
                          line)
    kind = kinds[0]
    when = _parse_when(label, entry.get("when"), where, line_of(entry, "when"), keys)
    at = line_of(entry, kind)
    try:
        if kind in ("choice", "grid"):
            dist: Distribution = _discrete(key, kind, entry, where, at, keys)
        else:
            dist = _numeric(key, kind, entry, where, at, keys)
    except ValueError as e:
        raise where.error(label, str(e), at) from None
    p = Param(key, dist, when)
    if key not in keys and not p.coupled:
        raise where.error(label, f"unknown trainer key{did_you_mean(key, keys)} (a name of your own is only for a "
                                 "choice of settings: {choice: [{key: value, ...}, ...]})", line)
    if key in keys and p.coupled:
        raise where.error(label, f"{key} takes plain values; a choice of settings (mappings) goes under a name "
                                 "of its own, e.g. model_size: {choice: [...]}", line)
    return p


def _discrete(key: str, kind: str, entry: Mapping[str, Any], where: Where, line: int | None,
              keys: Mapping[str, Any]) -> Distribution:
    label, raw = f"search.{key}", entry[kind]
    for extra in ("step", "log") + (("probabilities",) if kind == "grid" else ()):
        if extra in entry:
            raise where.error(f"{label}.{extra}", f"does not apply to {kind}"
                              + (" (a weighted draw is choice: [...] with search_alg random)"
                                 if extra == "probabilities" else " (only to ranges)"), line_of(entry, extra))
    if isinstance(raw, Mapping) and raw and all(isinstance(v, Mapping) for v in raw.values()):
        values: tuple[Any, ...] = tuple(_setting(key, str(lab), m, where, line, keys) for lab, m in raw.items())
    elif isinstance(raw, Mapping):
        raise where.error(label, f"{kind} needs a list of values; a continuous range cannot be gridded (use "
                                 "choice/grid with a list of values, or uniform for a range)", line)
    elif not isinstance(raw, list):
        raise where.error(label, f"{kind} needs a non-empty list of values, got {raw!r}", line)
    elif raw and all(isinstance(v, Mapping) for v in raw):
        values = _labelled(key, raw, where, line, keys)
    else:
        values = tuple(resolved(key, v, keys) for v in raw)
    if kind == "grid":
        return Grid(values)
    probs = entry.get("probabilities")
    if probs is not None and not isinstance(probs, list):
        raise where.error(f"{label}.probabilities", f"expected a list of numbers, got {probs!r}",
                          line_of(entry, "probabilities"))
    return Choice(values, tuple(probs) if probs is not None else None)


def _labelled(key: str, raw: list[Any], where: Where, line: int | None, keys: Mapping[str, Any]) -> tuple[Setting, ...]:
    """A list of mappings -> settings labelled by their values (``d_model=256, heads=8``)."""
    resolved = [_setting(key, "-", m, where, line, keys).values for m in raw]
    sections = {k.split(".")[0] for pairs in resolved for k, _ in pairs}
    cut = len(next(iter(sections))) + 1 if len(sections) == 1 else 0
    return tuple(Setting(", ".join(f"{k[cut:]}={_show(v)}" for k, v in pairs), pairs) for pairs in resolved)


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, float) else fmt(v)


def _setting(key: str, label: str, m: Mapping[str, Any], where: Where, line: int | None,
             keys: Mapping[str, Any]) -> Setting:
    """One mapping of a coupled choice -> a Setting of dotted trainer keys. Its keys may be relative to
    the choice's name or any section above it (``model: {choice: [{d_model: 256, heads: 8}]}``)."""
    parts = key.split(".")
    prefixes = [".".join(parts[:i]) + "." for i in range(len(parts), 0, -1)] + [""]
    out: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], rel: str) -> None:
        for k, v in node.items():
            name = f"{rel}{k}"
            full = next((f"{p}{name}" for p in prefixes if f"{p}{name}" in keys), None)
            if full is not None:
                if full in NOT_IN_SETTINGS:
                    raise where.error(f"search.{key}", f"a setting cannot set {full}: the sweep sets it", line)
                if full in out:
                    raise where.error(f"search.{key}", f"setting '{label}' sets {full} twice", line)
                if not is_scalar(v):
                    raise where.error(f"search.{key}", f"setting '{label}': {full} must be a plain value, "
                                                       f"got {v!r}", line)
                out[full] = resolved(full, v, keys)
            elif isinstance(v, Mapping) and any(k.startswith(f"{p}{name}.") for p in prefixes for k in keys):
                walk(v, f"{name}.")
            else:
                hint = did_you_mean(name, [k[len(p):] for p in prefixes for k in keys if k.startswith(p)])
                raise where.error(f"search.{key}", f"setting '{label}': unknown trainer key '{name}'{hint}", line)

    walk(m, "")
    if not out:
        raise where.error(f"search.{key}", f"setting '{label}' sets no key", line)
    return Setting(label, tuple(sorted(out.items())))


def _numeric(key: str, kind: str, entry: Mapping[str, Any], where: Where, line: int | None,
             keys: Mapping[str, Any]) -> Distribution:
    label = f"search.{key}"
    if "probabilities" in entry:
        raise where.error(f"{label}.probabilities", f"only applies to choice, not to {kind}",
                          line_of(entry, "probabilities"))
    a, b = _pair(label, kind, entry[kind], where, line)
    step: Any = entry.get("step")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise where.error(f"{label}.log", f"expected true or false, got {log!r}", line_of(entry, "log"))
    if log and kind != "int":
        hint = "use loguniform instead of uniform" if kind == "uniform" else f"{kind} takes no log"
        raise where.error(f"{label}.log", f"{hint} with log: true", line_of(entry, "log"))
    if keys.get(key, {}).get("type") == "int" and is_number(step) and float(step).is_integer():
        step = int(step)  # an integer key: W&B writes q: 1.0 where it means 1
    if kind == "int":
        return Int(a, b, None if step == 1 else step, log)
    if kind == "uniform":
        return Uniform(a, b, step)
    if kind == "loguniform":
        return LogUniform(a, b) if step is None else QLogUniform(a, b, step)
    if kind == "beta":
        return Beta(a, b, step)
    return (Normal if kind == "normal" else LogNormal)(a, b, step)


def _pair(label: str, kind: str, raw: Any, where: Where, line: int | None) -> tuple[Any, Any]:
    names = PAIR_NAMES.get(kind, ("low", "high"))
    if isinstance(raw, Mapping) and set(raw) == set(names):
        raw = [raw[names[0]], raw[names[1]]]
    if not isinstance(raw, list) or len(raw) != 2:
        raise where.error(label, f"{kind} needs [{names[0]}, {names[1]}] (or {{{names[0]}: .., {names[1]}: ..}}), "
                                 f"got {raw!r}", line)
    return raw[0], raw[1]


def _parse_when(label: str, raw: Any, where: Where, line: int | None, keys: Mapping[str, Any]) -> Condition:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise where.error(f"{label}.when", "expected {other.key: value} or {other.key: [values]}, "
                                           f"got {raw!r}", line)
    out = []
    for k, v in raw.items():
        vals = tuple(v) if isinstance(v, list) else (v,)
        if not vals or not all(is_scalar(x) for x in vals):
            raise where.error(f"{label}.when.{k}", f"expected a value or a list of values, got {v!r}", line)
        out.append((str(k), tuple(resolved(str(k), x, keys) for x in vals)))
    return tuple(out)


def resolved(key: str, v: Any, keys: Mapping[str, Any]) -> Any:
    """A listed value of trainer key ``key`` in the trainer's form (see the module docstring). A value the
    trainer rejects, and a value under a name of your own (a coupled choice's label), stay as written: the
    checks name the first with the key and the line."""
    if key not in keys or not is_scalar(v):
        return v
    try:
        return resolve_value(key, v)
    except UserError:
        return v


# ---------------------------------------------------------------- the canonical form (spec.to_dict())


def from_dict(entry: Mapping[str, Any]) -> Distribution:
    """A native ``search:`` entry in its canonical form (``spec.to_dict()["search"][key]`` without
    ``when``) -> its distribution. Raises ``ValueError`` naming what is wrong."""
    kinds = [k for k in KINDS if k in entry]
    need(len(kinds) == 1, f"needs exactly one of {', '.join(KINDS)}; got {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    raw, step = entry[kind], entry.get("step")
    if kind in ("choice", "grid"):
        values = _settings(raw) if isinstance(raw, Mapping) else tuple(raw)
        if kind == "grid":
            return Grid(values)
        probs = entry.get("probabilities")
        return Choice(values, tuple(probs) if probs is not None else None)
    need(isinstance(raw, (list, tuple)) and len(raw) == 2, f"{kind} needs a pair of numbers, but got {raw!r}")
    a, b = raw
    if kind == "uniform":
        return Uniform(a, b, step)
    if kind == "loguniform":
        return LogUniform(a, b) if step is None else QLogUniform(a, b, step)
    if kind == "int":
        return Int(a, b, step, bool(entry.get("log", False)))
    if kind == "beta":
        return Beta(a, b, step)
    return (Normal if kind == "normal" else LogNormal)(a, b, step)


def _settings(raw: Mapping[str, Any]) -> tuple[Setting, ...]:
    out = []
    for label, values in raw.items():
        need(isinstance(values, Mapping), f"setting '{label}' must be a mapping of trainer keys, got {values!r}")
        out.append(Setting(str(label), tuple(sorted(values.items()))))
    return tuple(out)

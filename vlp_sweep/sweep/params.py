"""One searched trainer key: its distribution, its condition, and how Ray Tune and Optuna sample it.

Distributions (the ``search:`` entries of a space)::

    {choice: [a, b, c]}                 one of the values (random / TPE); enumerated by search_alg grid
    {grid: [a, b, c]}                   every value (Ray grid search; not with Optuna: use choice)
    {uniform: [low, high], step: q}     float in [low, high]; optional step (low + k*step)
    {loguniform: [low, high]}           float, uniform in log space; low > 0
    {int: [low, high], step: s, log: b} integer in [low, high] inclusive; optional step or log
    ... when: {other.key: value | [values]}   only sampled / active when the other key has that value

Ranges may also be written ``{low: .., high: ..}``. Ray and Optuna are imported only inside the
methods that build their objects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vlp_sweep.errors import did_you_mean
from vlp_sweep.sweep.yaml_lines import Where, line_of

KINDS = ("choice", "grid", "uniform", "loguniform", "int")
RANGE_KINDS = ("uniform", "loguniform", "int")
ENTRY_KEYS = (*KINDS, "step", "log", "when")
Condition = tuple[tuple[str, tuple[Any, ...]], ...]


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps bools apart from numbers (``True == 1`` in Python, not in a space)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def contains(values: tuple[Any, ...], x: Any) -> bool:
    return any(same_value(v, x) for v in values)


@dataclass(frozen=True)
class Param:
    """A searched dotted trainer key. ``values`` for choice/grid, ``low``/``high`` for ranges."""

    key: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: Condition = ()

    @property
    def discrete(self) -> bool:
        return self.kind in ("choice", "grid")

    def check_points(self) -> tuple[Any, ...]:
        """The values to try through the trainer config at validate time: every value, or both ends."""
        return self.values if self.discrete else (self.low, self.high)

    def describe(self) -> str:
        """Human form, e.g. ``loguniform 0.0001 .. 0.003`` or ``choice [32, 48, 64]``."""
        if self.discrete:
            return f"{self.kind} [{', '.join(_fmt(v) for v in self.values)}]"
        extra = (f", step {_fmt(self.step)}" if self.step is not None else "") + (", log" if self.log else "")
        return f"{self.kind} {_fmt(self.low)} .. {_fmt(self.high)}{extra}"

    def condition_text(self) -> str:
        parts = [f"{k} = {' | '.join(_fmt(v) for v in vs)}" for k, vs in self.when]
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the native ``search:`` entry form (parses back to an equal Param)."""
        out: dict[str, Any] = {self.kind: list(self.values) if self.discrete else [self.low, self.high]}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        if self.when:
            out["when"] = {k: list(vs) for k, vs in self.when}
        return out

    def ray(self, grid_alg: bool) -> Any:
        """The Ray Tune sampler: choice/uniform/loguniform/randint/...; grid_search for grid
        (and for choice when the search algorithm is grid)."""
        from ray import tune

        if self.kind == "grid" or (self.kind == "choice" and grid_alg):
            return tune.grid_search(list(self.values))
        if self.kind == "choice":
            return tune.choice(list(self.values))
        low, high = self.bounds()
        if self.kind == "loguniform":
            return tune.loguniform(low, high)
        if self.kind == "uniform":
            return tune.uniform(low, high) if self.step is None else tune.quniform(low, high, self.step)
        return self._ray_int()

    def _ray_int(self) -> Any:
        from ray import tune

        low, high, step = int(self.bounds()[0]), int(self.bounds()[1]), int(self.step or 1)
        if self.log:
            return tune.lograndint(low, high + 1)  # Ray's upper bound is exclusive here
        if step == 1:
            return tune.randint(low, high + 1)
        if low % step == 0:
            return tune.qrandint(low, high, step)  # multiples of step, upper bound inclusive
        # Ray quantises to multiples of q, Optuna to low + k*step: list the points to agree with Optuna.
        return tune.choice(list(range(low, high + 1, step)))

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this key: ``suggest_categorical``, ``suggest_float`` or ``suggest_int``."""
        if self.discrete:
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.bounds()
        if self.kind == "int":
            return trial.suggest_int(self.key, int(low), int(high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.key, low, high, step=self.step, log=self.kind == "loguniform")

    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range (0, 0 for choice/grid)."""
        return float(self.low or 0), float(self.high or 0)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def parse_param(key: str, entry: Any, where: Where, line: int | None) -> Param:
    """One ``search:`` entry -> :class:`Param`; a problem is a one-line UserError naming ``search.<key>``."""
    label = f"search.{key}"
    if not isinstance(entry, Mapping):
        raise where.error(label, "expected a distribution such as {choice: [...]} or {uniform: [low, high]}, "
                                 f"got {entry!r} (to fix a value, put it under base)", line)
    for k in entry:
        if k not in ENTRY_KEYS:
            raise where.error(f"{label}.{k}", f"unknown distribution key{did_you_mean(str(k), ENTRY_KEYS)}; "
                                              f"expected one of {', '.join(KINDS)} (+ step, log, when)",
                              line_of(entry, k))
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise where.error(label, f"needs exactly one of {', '.join(KINDS)}; got {', '.join(kinds) or 'none'}",
                          line)
    kind = kinds[0]
    when = _parse_when(label, entry.get("when"), where, line_of(entry, "when"))
    if kind in ("choice", "grid"):
        return _parse_discrete(key, kind, entry, where, line_of(entry, kind), when)
    return _parse_range(key, kind, entry, where, line_of(entry, kind), when)


def _parse_discrete(key: str, kind: str, entry: Mapping[str, Any], where: Where, line: int | None,
                    when: Condition) -> Param:
    label, raw = f"search.{key}", entry[kind]
    for extra in ("step", "log"):
        if extra in entry:
            raise where.error(f"{label}.{extra}", f"only applies to ranges (uniform, int), not to {kind}",
                              line)
    if isinstance(raw, Mapping):
        hint = "use choice/grid with a list of values, or uniform for a range"
        raise where.error(label, f"{kind} needs a list of values; a continuous range cannot be gridded "
                                 f"({hint})", line)
    if not isinstance(raw, list) or not raw:
        raise where.error(label, f"{kind} needs a non-empty list of values, got {raw!r}", line)
    for i, v in enumerate(raw):
        if not _is_scalar(v):
            raise where.error(label, f"{kind} values must be plain numbers, strings, booleans or null; "
                                     f"got {v!r}", line)
        if contains(tuple(raw[:i]), v):
            raise where.error(label, f"{kind} lists {_fmt(v)} twice", line)
    return Param(key, kind, values=tuple(raw), when=when)


def _parse_range(key: str, kind: str, entry: Mapping[str, Any], where: Where, line: int | None,
                 when: Condition) -> Param:
    label = f"search.{key}"
    low, high = _bounds(label, kind, entry[kind], where, line)
    step, log = entry.get("step"), entry.get("log", False)
    if not isinstance(log, bool):
        raise where.error(f"{label}.log", f"expected true or false, got {log!r}", line_of(entry, "log"))
    if low >= high:
        raise where.error(label, f"low must be < high, got low={_fmt(low)}, high={_fmt(high)}"
                                 f"{' (to fix a value, put it under base)' if low == high else ''}", line)
    if kind == "int":
        return _int_param(key, low, high, step, log, where, line, when)
    if log:
        raise where.error(f"{label}.log", f"use loguniform instead of {kind} with log: true", line)
    if kind == "loguniform":
        if low <= 0:
            raise where.error(label, f"loguniform needs low > 0, got low={_fmt(low)}", line)
        if step is not None:
            raise where.error(f"{label}.step", "loguniform takes no step", line)
        return Param(key, kind, low=float(low), high=float(high), when=when)
    if step is not None:
        step = _float_step(label, low, high, step, where, line)
    return Param(key, kind, low=float(low), high=float(high), step=step, when=when)


def _bounds(label: str, kind: str, raw: Any, where: Where, line: int | None) -> tuple[Any, Any]:
    if isinstance(raw, Mapping) and set(raw) == {"low", "high"}:
        raw = [raw["low"], raw["high"]]
    if not isinstance(raw, list) or len(raw) != 2:
        raise where.error(label, f"{kind} needs [low, high] (or {{low: .., high: ..}}), got {raw!r}", line)
    for v in raw:
        if not _is_number(v):
            raise where.error(label, f"{kind} bounds must be finite numbers, got {v!r}", line)
        if kind == "int" and not isinstance(v, int):
            raise where.error(label, f"int bounds must be integers, got {v!r}", line)
    return raw[0], raw[1]


def _int_param(key: str, low: int, high: int, step: Any, log: bool, where: Where, line: int | None,
               when: Condition) -> Param:
    label = f"search.{key}"
    if step is not None and (not isinstance(step, int) or isinstance(step, bool) or step < 1):
        raise where.error(f"{label}.step", f"int step must be an integer >= 1, got {step!r}", line)
    if step is not None and (high - low) % step:
        raise where.error(label, f"high - low = {high - low} is not a multiple of step {step}", line)
    if log and step not in (None, 1):
        raise where.error(label, "int with log: true takes no step (Optuna cannot combine them)", line)
    if log and low < 1:
        raise where.error(label, f"int with log: true needs low >= 1, got low={low}", line)
    return Param(key, "int", low=low, high=high, step=step if step not in (None, 1) else None, log=log,
                 when=when)


def _float_step(label: str, low: float, high: float, step: Any, where: Where, line: int | None) -> float:
    if not _is_number(step) or step <= 0:
        raise where.error(f"{label}.step", f"step must be a number > 0, got {step!r}", line)
    for name, v in (("low", low), ("high", high)):
        # Ray rounds to multiples of step and Optuna takes low + k*step: they agree only on multiples.
        if abs(v / step - round(v / step)) > 1e-9 * max(1.0, abs(v / step)):
            raise where.error(label, f"{name}={_fmt(v)} is not a multiple of step {_fmt(step)}", line)
    return float(step)


def _parse_when(label: str, raw: Any, where: Where, line: int | None) -> Condition:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise where.error(f"{label}.when", "expected {other.key: value} or {other.key: [values]}, "
                                           f"got {raw!r}", line)
    out = []
    for k, v in raw.items():
        vals = tuple(v) if isinstance(v, list) else (v,)
        if not vals or not all(_is_scalar(x) for x in vals):
            raise where.error(f"{label}.when.{k}", f"expected a value or a list of values, got {v!r}", line)
        out.append((str(k), vals))
    return tuple(out)

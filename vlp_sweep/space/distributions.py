"""What a searched key can take: small frozen value objects that validate themselves when built, and the
value helpers they share (how a value prints and compares, W&B's rounding).

Each distribution knows its native ``search:`` word (``kind``), turns into plain data (``to_dict``;
back: ``entries.from_dict``), lists the values the trainer must accept (``check_points``) and
describes itself. An impossible distribution raises ``ValueError`` in ``__post_init__`` with the
values in the message (``low < high must hold, but got low=0.3, high=0.1``); the parser turns that
into a one-line error naming the key and the YAML line. Nothing here knows Ray or Optuna: the
sweep's ``backends`` translates.

Shaped distributions (normal, lognormal, beta, log-uniform rounded to a step, and a choice with
probabilities) are drawn through their inverse CDF of a uniform quantile ``u`` in ``[U_LOW, U_HIGH]``:
a searcher models ``u`` and the trial gets ``value_at(u)``, then W&B's rounding to a multiple of
``step``. The quantile is cut at 1e-6 on both sides (a normal at +-4.75 sigma), so every value a
trial can draw is finite and lies between ``check_points()``, which validation puts through the
trainer's checks. scipy's ``stats`` gives the inverse CDFs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["KINDS", "U_HIGH", "U_LOW", "Beta", "Choice", "Discrete", "Distribution", "Grid", "Int", "LogNormal",
           "LogUniform", "Normal", "Pairs", "QLogUniform", "Range", "Setting", "Shaped", "Uniform", "contains", "fmt",
           "is_number", "is_scalar", "same_value"]

U_LOW, U_HIGH = 1e-6, 1.0 - 1e-6
Pairs = tuple[tuple[str, Any], ...]


# ---------------------------------------------------------------- values

def fmt(v: Any) -> str:
    """A value as a space shows it: ``0.001``, ``true``, ``null``, ``hcl``."""
    if isinstance(v, float):
        return f"{v:g}"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps bools apart from numbers (``True == 1`` in Python, not in a space)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def contains(values: tuple[Any, ...], x: Any) -> bool:
    return any(same_value(v, x) for v in values)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def multiple(v: float, step: float) -> bool:
    return abs(v / step - round(v / step)) <= 1e-9 * max(1.0, abs(v / step))


def rounded(x: float, step: float | int | None) -> Any:
    """W&B's quantisation: ``round(x / step) * step``, an int when ``step`` is one."""
    if step is None:
        return float(x)
    k = round(x / step)
    return int(k * step) if isinstance(step, int) else float(f"{k * step:.12g}")


# ---------------------------------------------------------------- discrete


@dataclass(frozen=True)
class Setting:
    """One value of a coupled choice: several trainer keys set together (``label`` is what a trial's
    params hold, e.g. ``small``; ``values`` are sorted ``(dotted key, value)`` pairs)."""

    label: str
    values: Pairs

    def __post_init__(self) -> None:
        need(isinstance(self.label, str) and bool(self.label), f"a setting needs a label, got {self.label!r}")
        need(bool(self.values), f"setting '{self.label}' sets no key")
        for k, v in self.values:
            need(is_scalar(v), f"setting '{self.label}': {k} must be a plain value, got {v!r}")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def describe(self) -> str:
        return f"{self.label} {{{', '.join(f'{k}: {fmt(v)}' for k, v in self.values)}}}"


@dataclass(frozen=True)
class Discrete:
    """Values listed one by one: plain values, or :class:`Setting` s (a coupled choice)."""

    values: tuple[Any, ...]
    kind: ClassVar[str] = "discrete"
    discrete: ClassVar[bool] = True

    def __post_init__(self) -> None:
        need(bool(self.values), f"{self.kind} needs a non-empty list of values")
        coupled = [isinstance(v, Setting) for v in self.values]
        need(all(coupled) or not any(coupled), f"{self.kind} mixes settings (mappings) with plain values")
        for i, v in enumerate(self.values):
            need(isinstance(v, Setting) or is_scalar(v),
                  f"{self.kind} values must be plain numbers, strings, booleans or null, got {v!r}")
            need(not contains(self.options[:i], self.options[i]), f"{self.kind} lists {fmt(self.options[i])} twice")
            if isinstance(v, Setting):
                need(all(v.values != w.values for w in self.values[:i] if isinstance(w, Setting)),
                      f"{self.kind}: settings '{v.label}' and another one set the same values")

    @property
    def coupled(self) -> bool:
        """Whether each value sets several keys (a choice of :class:`Setting` s)."""
        return isinstance(self.values[0], Setting)

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in self.values)

    @property
    def options(self) -> tuple[Any, ...]:
        """What a trial's params hold: the values, or the settings' labels."""
        return tuple(v.label if isinstance(v, Setting) else v for v in self.values)

    def setting(self, label: Any) -> Setting:
        return next(v for v in self.values if isinstance(v, Setting) and v.label == label)

    def check_points(self) -> tuple[Any, ...]:
        return self.values

    def enumerate(self, limit: int = 256) -> list[Any] | None:
        return list(self.options)

    def describe(self) -> str:
        if self.values and isinstance(self.values[0], Setting):
            return f"{self.kind} of {len(self.values)} settings"
        return f"{self.kind} [{', '.join(fmt(v) for v in self.values)}]"

    def to_dict(self) -> dict[str, Any]:
        if self.coupled:
            return {self.kind: {v.label: v.as_dict() for v in self.values}}
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class Choice(Discrete):
    """One of the values (random / TPE; enumerated by search_alg grid). ``probabilities`` (W&B's
    categorical with probabilities) weight a random draw; TPE and grids cannot use them."""

    probabilities: tuple[float, ...] | None = None
    kind: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        super().__post_init__()
        p = self.probabilities
        if p is None:
            return
        need(len(p) == len(self.values),
              f"probabilities needs one number per value, but got {len(p)} for {len(self.values)} values")
        need(all(is_number(x) and x >= 0 for x in p), f"probabilities must be numbers >= 0, but got {list(p)}")
        need(abs(sum(p) - 1) <= 1e-6, f"probabilities must sum to 1, but got sum={sum(p):g}")

    @property
    def shaped(self) -> bool:
        """Drawn through :meth:`value_at` (weighted) rather than uniformly."""
        return self.probabilities is not None

    def value_at(self, u: float) -> Any:
        """The option whose cumulative probability first exceeds ``u`` (the inverse CDF)."""
        assert self.probabilities is not None
        total = 0.0
        for option, p in zip(self.options, self.probabilities, strict=True):
            total += p
            if u < total:
                return option
        return next(o for o, p in zip(reversed(self.options), reversed(self.probabilities), strict=True) if p > 0)

    def describe(self) -> str:
        if self.probabilities is None:
            return super().describe()
        weighted = zip(self.options, self.probabilities, strict=True)
        return f"choice [{', '.join(f'{fmt(v)} ({p:g})' for v, p in weighted)}]"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.probabilities is not None:
            out["probabilities"] = list(self.probabilities)
        return out


@dataclass(frozen=True)
class Grid(Discrete):
    """Every value (Ray's grid search; not with Optuna TPE, which cannot grid: use choice)."""

    kind: ClassVar[str] = "grid"


# ---------------------------------------------------------------- ranges


@dataclass(frozen=True)
class Range:
    """A numeric range [low, high]; ``step`` quantises it (``integer``: the values are ints)."""

    low: float
    high: float
    kind: ClassVar[str] = "range"
    discrete: ClassVar[bool] = False
    shaped: ClassVar[bool] = False  # drawn through value_at(u), see the module docstring

    def __post_init__(self) -> None:
        need(is_number(self.low) and is_number(self.high),
              f"{self.kind} bounds must be finite numbers, but got low={self.low!r}, high={self.high!r}")
        hint = " (to fix a value, put it under base)" if self.low == self.high else ""
        need(self.low < self.high, f"low < high must hold, but got low={fmt(self.low)}, high={fmt(self.high)}{hint}")

    @property
    def integer(self) -> bool:
        return False

    def check_points(self) -> tuple[Any, ...]:
        return self.low, self.high

    def enumerate(self, limit: int = 256) -> list[Any] | None:
        return None

    def describe(self) -> str:
        return f"{self.kind} {fmt(self.low)} .. {fmt(self.high)}"

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}


@dataclass(frozen=True)
class Uniform(Range):
    """Float in [low, high]; with ``step``, low + k*step (low and high multiples of step, so that
    Ray, which rounds to multiples, and Optuna, which counts from low, draw the same points)."""

    step: float | None = None
    kind: ClassVar[str] = "uniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.step is None:
            return
        need(is_number(self.step) and self.step > 0, f"step > 0 must hold, but got step={self.step!r}")
        for name, v in (("low", self.low), ("high", self.high)):
            need(multiple(v, self.step), f"{name}={fmt(v)} is not a multiple of step {fmt(self.step)}")

    def describe(self) -> str:
        return super().describe() + (f", step {fmt(self.step)}" if self.step is not None else "")

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), **({"step": self.step} if self.step is not None else {})}


@dataclass(frozen=True)
class LogUniform(Range):
    """Float in [low, high], uniform in log space; low > 0."""

    kind: ClassVar[str] = "loguniform"

    def __post_init__(self) -> None:
        super().__post_init__()
        need(self.low > 0, f"loguniform needs low > 0, but got low={fmt(self.low)}")


@dataclass(frozen=True)
class Int(Range):
    """Integer in [low, high] inclusive; ``step`` (low + k*step) or ``log`` (uniform in log space)."""

    step: int | None = None
    log: bool = False
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        for name, v in (("low", self.low), ("high", self.high)):
            need(isinstance(v, int) and not isinstance(v, bool), f"int bounds must be integers, but got {name}={v!r}")
        super().__post_init__()
        s = self.step
        need(s is None or (isinstance(s, int) and not isinstance(s, bool) and s >= 1),
              f"int step must be an integer >= 1, but got step={s!r}")
        if s is not None:
            need(not (self.high - self.low) % s,
                  f"high - low = {int(self.high - self.low)} is not a multiple of step {s}")
        need(not (self.log and s not in (None, 1)), "int with log: true takes no step (Optuna cannot combine them)")
        need(not self.log or self.low >= 1, f"int with log: true needs low >= 1, but got low={self.low}")

    @property
    def integer(self) -> bool:
        return True

    def enumerate(self, limit: int = 256) -> list[Any] | None:
        step = self.step or 1
        if self.high - self.low >= limit * step:
            return None
        return list(range(int(self.low), int(self.high) + 1, step))

    def describe(self) -> str:
        return (super().describe() + (f", step {self.step}" if self.step not in (None, 1) else "")
                + (", log" if self.log else ""))

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.step not in (None, 1):
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


# ---------------------------------------------------------------- shaped


class Shaped:
    """Mixin of the distributions drawn through ``value_at(u)``: the inverse CDF, then W&B's rounding to
    a multiple of ``step`` (an int when ``step`` is one). Subclasses give ``ppf`` and ``step``."""

    shaped: ClassVar[bool] = True
    discrete: ClassVar[bool] = False
    kind: ClassVar[str]
    step: float | int | None

    def ppf(self, u: float) -> float:
        raise NotImplementedError

    def value_at(self, u: float) -> Any:
        return rounded(self.ppf(u), self.step)

    @property
    def integer(self) -> bool:
        return isinstance(self.step, int) and not isinstance(self.step, bool)

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a trial can draw."""
        return float(self.value_at(U_LOW)), float(self.value_at(U_HIGH))

    def check_points(self) -> tuple[Any, ...]:
        return self.value_at(U_LOW), self.value_at(U_HIGH)

    def enumerate(self, limit: int = 256) -> list[Any] | None:
        lo, hi = self.check_points()
        if not self.integer or self.step is None or (hi - lo) >= limit * self.step:
            return None
        return list(range(int(lo), int(hi) + 1, int(self.step)))

    def _step_ok(self) -> None:
        s = self.step
        need(s is None or (is_number(s) and s > 0), f"step > 0 must hold, but got step={s!r}")

    def _extra(self) -> str:
        lo, hi = self.check_points()
        return (f", step {fmt(self.step)}" if self.step is not None else "") + f" (draws {fmt(lo)} .. {fmt(hi)})"


@dataclass(frozen=True)
class QLogUniform(Shaped):
    """Log-uniform in [low, high], rounded to a multiple of ``step`` (W&B's q_log_uniform_values)."""

    low: float
    high: float
    step: float | int = 1
    kind: ClassVar[str] = "loguniform"

    def __post_init__(self) -> None:
        need(is_number(self.low) and is_number(self.high),
             f"loguniform bounds must be finite numbers, but got low={self.low!r}, high={self.high!r}")
        need(self.low < self.high, f"low < high must hold, but got low={fmt(self.low)}, high={fmt(self.high)}")
        need(self.low > 0, f"loguniform needs low > 0, but got low={fmt(self.low)}")
        self._step_ok()
        need(self.step is not None, "step > 0 must hold, but got step=None")

    def ppf(self, u: float) -> float:
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))

    def value_at(self, u: float) -> Any:
        # A bounded range needs no cut at the tails: [U_LOW, U_HIGH] maps onto all of [low, high].
        return rounded(self.ppf(min(max((u - U_LOW) / (U_HIGH - U_LOW), 0.0), 1.0)), self.step)

    def describe(self) -> str:
        return f"loguniform {fmt(self.low)} .. {fmt(self.high)}{self._extra()}"

    def to_dict(self) -> dict[str, Any]:
        return {"loguniform": [self.low, self.high], "step": self.step}


@dataclass(frozen=True)
class Normal(Shaped):
    """Normal(mu, sigma), optionally rounded to a multiple of ``step``."""

    mu: float
    sigma: float
    step: float | int | None = None
    kind: ClassVar[str] = "normal"

    def __post_init__(self) -> None:
        need(is_number(self.mu) and is_number(self.sigma),
              f"{self.kind} needs finite numbers, but got mu={self.mu!r}, sigma={self.sigma!r}")
        need(self.sigma > 0,
              f"sigma > 0 must hold, but got sigma={fmt(self.sigma)} (to fix a value, put it under base)")
        self._step_ok()

    def ppf(self, u: float) -> float:
        from scipy import stats

        return float(stats.norm.ppf(u, loc=self.mu, scale=self.sigma))

    def describe(self) -> str:
        return f"{self.kind} mu {fmt(self.mu)} sigma {fmt(self.sigma)}{self._extra()}"

    def to_dict(self) -> dict[str, Any]:
        return {self.kind: [self.mu, self.sigma], **({"step": self.step} if self.step is not None else {})}


@dataclass(frozen=True)
class LogNormal(Normal):
    """exp(Normal(mu, sigma)) (mu and sigma of the log), optionally rounded to a multiple of ``step``."""

    kind: ClassVar[str] = "lognormal"

    def ppf(self, u: float) -> float:
        return math.exp(super().ppf(u))


@dataclass(frozen=True)
class Beta(Shaped):
    """Beta(a, b) on [0, 1], optionally rounded to a multiple of ``step``."""

    a: float
    b: float
    step: float | int | None = None
    kind: ClassVar[str] = "beta"

    def __post_init__(self) -> None:
        need(is_number(self.a) and is_number(self.b) and self.a > 0 and self.b > 0,
              f"a > 0 and b > 0 must hold, but got a={self.a!r}, b={self.b!r}")
        self._step_ok()

    def ppf(self, u: float) -> float:
        from scipy import stats

        return float(stats.beta.ppf(u, self.a, self.b))

    def describe(self) -> str:
        return f"beta a {fmt(self.a)} b {fmt(self.b)}{self._extra()}"

    def to_dict(self) -> dict[str, Any]:
        return {"beta": [self.a, self.b], **({"step": self.step} if self.step is not None else {})}


Distribution = Choice | Grid | Uniform | LogUniform | Int | QLogUniform | Normal | LogNormal | Beta
KINDS = ("choice", "grid", "uniform", "loguniform", "int", "normal", "lognormal", "beta")

"""Shaped distributions, drawn through their inverse CDF of a uniform quantile u in [U_LOW, U_HIGH].

A searcher models u and the trial gets ``value_at(u)``: the inverse CDF, then W&B's rounding to a
multiple of ``step``. The quantile is cut at 1e-6 on both sides (a normal at +-4.75 sigma), so every
value a trial can draw is finite and lies between ``check_points()``, which validation puts
through the trainer's checks. scipy's ``stats`` gives the inverse CDFs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from vlp_sweep.sweep.values import U_HIGH, U_LOW, fmt, is_number, need, rounded


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

"""Thresholds of a run's health checks (the ``health:`` section of a search space). No torch here, so a
search space can be validated without importing it.

The plan's checklist, as numbers: the training loss must fall over a window of evaluations; the eval
loss must not rise while the training loss falls (overfitting) nor go flat early (plateau); the GPU
should be busy; milestones such as "eval loss below 3.0 by epoch 100" are :class:`Check` entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlp_sweep.metric_names import METRIC_NAMES

STATUSES = ("pass", "warn", "fail", "n/a")
ITEMS = ("inputs", "finite", "train_loss", "eval_loss", "checks", "oom", "gpu")  # the checklist, in order
INPUTS = ("kpts", "siglip")
# What a run reports with each evaluation (column -> type): the leaderboard's health columns.
COLUMNS: dict[str, str] = {"health": "str", "health_flags": "str", **{f"health_{i}": "str" for i in ITEMS},
                           "fed_kpts_dim": "int", "fed_siglip_dim": "int", "stall_epoch": "int",
                           "overfit_epoch": "int", "plateau_epoch": "int", "gpu_util": "float",
                           "peak_mem_gb": "float", "micro_batch": "int", "oom_rescues": "int"}
# Of those, what history.parquet keeps per evaluation.
HISTORY_HEALTH = ("health", "health_flags", "gpu_util", "peak_mem_gb", "micro_batch")
CHECK_METRICS = METRIC_NAMES  # what a milestone can be about: any metric the trainer reports


@dataclass(frozen=True)
class Check:
    """A milestone: ``metric`` below (or above) a value at an evaluation no later than ``by_epoch``."""

    metric: str
    below: float | None = None
    above: float | None = None
    by_epoch: int = 1

    def describe(self) -> str:
        bound = f"< {self.below:g}" if self.below is not None else f"> {self.above:g}"
        return f"{self.metric} {bound} by epoch {self.by_epoch}"

    def holds(self, value: float) -> bool:
        if self.below is not None:
            return value < self.below
        return self.above is not None and value > self.above

    def to_dict(self) -> dict[str, Any]:
        bound = {"below": self.below} if self.below is not None else {"above": self.above}
        return {"metric": self.metric, **bound, "by_epoch": self.by_epoch}


# The plan: "validation loss below 3.0 by epoch 100".
PLAN_CHECKS = (Check("eval_loss", below=3.0, by_epoch=100),)


@dataclass(frozen=True)
class HealthConfig:
    """What counts as a healthy run; every field has the default a space gets without ``health:``."""

    window: int = 5  # evaluations over which the training loss must fall, and the eval loss is judged flat
    min_decrease: float = 0.01  # relative fall of the training loss over the window below which it stalls
    plateau_tol: float = 0.01  # eval loss within this relative band over the window: a plateau
    plateau_early: float = 0.5  # a plateau beginning before this fraction of the epochs is a warning
    overfit_rise: float = 0.02  # eval loss this fraction above its minimum while training loss falls
    min_gpu_util: float = 80.0  # mean GPU utilisation (%) below this is a warning (the plan: about 90%)
    stop_on_nonfinite: bool = True  # a NaN/inf loss or gradient stops the trial at once, as an error
    min_micro_batch: int = 2  # out-of-memory rescue: never halve the micro-batch below this
    checks: tuple[Check, ...] = field(default=PLAN_CHECKS)

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "min_decrease": self.min_decrease, "plateau_tol": self.plateau_tol,
                "plateau_early": self.plateau_early, "overfit_rise": self.overfit_rise,
                "min_gpu_util": self.min_gpu_util, "stop_on_nonfinite": self.stop_on_nonfinite,
                "min_micro_batch": self.min_micro_batch, "checks": [c.to_dict() for c in self.checks]}

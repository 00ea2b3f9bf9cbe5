"""The ``health:`` section of a search space: thresholds of each trial's health checklist
(``train.watch.health_config.HealthConfig``), every key optional, errors naming the key and the YAML line::

    health:
      window: 5               # evaluations over which the training loss must fall
      min_decrease: 0.01      # ... by this fraction of its value
      plateau_tol: 0.01       # eval loss flat within this fraction over a window: a plateau
      plateau_early: 0.5      # ... a warning when it began before this fraction of the epochs
      overfit_rise: 0.02      # eval loss this fraction above its minimum while training loss falls
      min_gpu_util: 80        # percent
      stop_on_nonfinite: true
      min_micro_batch: 2      # out-of-memory rescue: the smallest micro-batch it may halve to
      checks:                 # milestones (default: the plan's eval_loss < 3.0 by epoch 100)
        - {metric: eval_loss, below: 3.0, by_epoch: 100}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vlp_sweep.errors import did_you_mean
from vlp_sweep.space.sections import check_keys, get_bool, get_int, get_num
from vlp_sweep.space.yaml_lines import Where, line_of
from vlp_sweep.train.watch.health_config import CHECK_METRICS, Check, HealthConfig

_KEYS = tuple(HealthConfig.__dataclass_fields__)


def parse_health(m: Mapping[str, Any], where: Where) -> HealthConfig:
    check_keys(m, "health", _KEYS, where)
    d = HealthConfig()

    def num(key: str, default: float, hi: float | None = None) -> float:
        v = float(get_num(m, key, f"health.{key}", where, default, lo=0))
        if hi is not None and v > hi:
            raise where.error(f"health.{key}", f"must be <= {hi:g}, got {v:g}", line_of(m, key))
        return v

    return HealthConfig(
        window=get_int(m, "window", "health.window", where, d.window, lo=1),
        min_decrease=num("min_decrease", d.min_decrease, 1),
        plateau_tol=num("plateau_tol", d.plateau_tol, 1),
        plateau_early=num("plateau_early", d.plateau_early, 1),
        overfit_rise=num("overfit_rise", d.overfit_rise),
        min_gpu_util=num("min_gpu_util", d.min_gpu_util, 100),
        stop_on_nonfinite=get_bool(m, "stop_on_nonfinite", "health.stop_on_nonfinite", where, d.stop_on_nonfinite),
        min_micro_batch=get_int(m, "min_micro_batch", "health.min_micro_batch", where, d.min_micro_batch, lo=1),
        checks=_checks(m, where) if "checks" in m else d.checks)


def _checks(m: Mapping[str, Any], where: Where) -> tuple[Check, ...]:
    raw, line = m["checks"], line_of(m, "checks")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.error("health.checks", f"expected a list of {{metric, below|above, by_epoch}}, got {raw!r}",
                          line)
    return tuple(_check(c, f"health.checks[{i}]", where, line) for i, c in enumerate(raw))


def _check(c: Any, label: str, where: Where, line: int | None) -> Check:
    if not isinstance(c, Mapping):
        raise where.error(label, f"expected {{metric, below|above, by_epoch}}, got {c!r}", line)
    check_keys(c, label, ("metric", "below", "above", "by_epoch"), where)
    metric = c.get("metric")
    if metric not in CHECK_METRICS:
        raise where.error(f"{label}.metric", f"{metric!r} is not a metric the trainer reports"
                                             f"{did_you_mean(str(metric), CHECK_METRICS)} (metrics: "
                                             f"{', '.join(CHECK_METRICS)})", line_of(c, "metric"))
    if ("below" in c) == ("above" in c):
        raise where.error(label, "needs exactly one of below: or above:", line_of(c, "metric"))
    bound = "below" if "below" in c else "above"
    value = float(get_num(c, bound, f"{label}.{bound}", where, 0.0))
    by = get_int(c, "by_epoch", f"{label}.by_epoch", where, 1, lo=1)
    return Check(str(metric), by_epoch=by, **{bound: value})

"""Parameter importance from the leaderboard: an Optuna study rebuilt from finished trials.

Each finished trial becomes a completed ``optuna`` trial (``create_trial``) with the params its search
algorithm sampled (the leaderboard's ``params`` column) and its ``best_<metric>`` as the value; the
distributions come from the spec's ``search`` section, so conditional keys are absent where they were
inactive. The evaluator is PED-ANOVA (``PedAnovaImportanceEvaluator``): it needs no scikit-learn
(fANOVA and mean-decrease-impurity do) and handles conditional parameters. It measures how much each
key's distribution among the top quarter of trials differs from its distribution among all of them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vlp_sweep.report.select import drawn_params

MIN_TRIALS = 4  # below this the ranking of parameters is noise


@dataclass(frozen=True)
class Importance:
    values: dict[str, float] = field(default_factory=dict)  # key -> share (sums to 1), most important first
    n_trials: int = 0
    method: str = "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator)"
    note: str = ""  # why there are no values, or a caveat


def distribution(entry: dict[str, Any]) -> Any:
    """A spec ``search`` entry (``{choice: [...]}``, ``{loguniform: [lo, hi]}``, ...) -> Optuna distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    for kind in ("choice", "grid"):
        if kind in entry:
            return CategoricalDistribution(tuple(entry[kind]))
    if "loguniform" in entry:
        lo, hi = entry["loguniform"]
        return FloatDistribution(float(lo), float(hi), log=True)
    if "uniform" in entry:
        lo, hi = entry["uniform"]
        return FloatDistribution(float(lo), float(hi), step=entry.get("step"))
    if "int" in entry:
        lo, hi = entry["int"]
        return IntDistribution(int(lo), int(hi), step=int(entry.get("step") or 1), log=bool(entry.get("log")))
    raise ValueError(f"unknown search entry {entry!r}")


def _trials(rows: pd.DataFrame, search: dict[str, Any], dists: dict[str, Any],
            metric: str) -> tuple[list[Any], int]:
    """Optuna FrozenTrials of the rows (skipping ones whose params do not fit the space); skipped count."""
    import optuna

    out, skipped = [], 0
    for _, row in rows.iterrows():
        value = row.get(f"best_{metric}")
        params = {k: v for k, v in drawn_params(row, search).items() if k in dists}
        if value is None or not math.isfinite(float(value)):
            continue
        try:
            out.append(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                 value=float(value)))
        except ValueError:  # a value outside the space (e.g. the space was edited before a resume)
            skipped += 1
    return out, skipped


def param_importance(rows: pd.DataFrame, search: dict[str, Any], metric: str, mode: str) -> Importance:
    """Importance of each searched key for ``metric`` over the finished trials in ``rows``."""
    if not search:
        return Importance(note="the space searches no key")
    try:
        dists = {k: distribution(v) for k, v in search.items()}
    except (ValueError, TypeError) as e:
        return Importance(note=f"cannot rebuild the search space ({e})")
    trials, skipped = _trials(rows, search, dists, metric)
    n = len(trials)
    if n < MIN_TRIALS:
        return Importance(n_trials=n, note=f"needs >= {MIN_TRIALS} finished trials (have {n})")
    if len({round(t.value, 12) for t in trials}) < 2:
        return Importance(n_trials=n, note=f"all {n} finished trials have the same {metric}")
    values = _evaluate(trials, mode, n)
    note = f"{skipped} trials skipped (params outside the space)" if skipped else ""
    if n < 10:
        note = "; ".join(x for x in (note, f"only {n} trials: a rough indication") if x)
    return Importance(values=values, n_trials=n, note=note)


def _evaluate(trials: list[Any], mode: str, n: int) -> dict[str, float]:
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials(trials)
    # The top quarter (at least two trials): Optuna's default 10 % leaves too few trials in the top set of
    # a sweep of tens of trials, and the ranking of keys then follows chance (measured on synthetic rows).
    evaluator = PedAnovaImportanceEvaluator(target_quantile=min(0.5, max(0.25, 2 / n)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "few trials in a regime" and experimental-API notices
        raw = get_param_importances(study, evaluator=evaluator, normalize=True)
    return {str(k): float(v) for k, v in sorted(raw.items(), key=lambda kv: -kv[1])}

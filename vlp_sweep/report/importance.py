"""Parameter importance at one equal budget: an Optuna study rebuilt from the trials at that epoch.

Each trial at the budget (``budgets.Slice``) becomes a completed ``optuna`` trial (``create_trial``) with
the params its search algorithm sampled and that applied (``select.drawn_params``) and its metric at
that epoch as the value; the distributions come from the spec's ``search`` section, so a conditional key
is absent where it was inactive. The evaluator is PED-ANOVA (``PedAnovaImportanceEvaluator``): it needs
no scikit-learn (fANOVA and mean-decrease-impurity do) and handles conditional parameters. It measures
how much each key's distribution among the top quarter of trials differs from its distribution among
all of them. A key active in fewer than ``MIN_TRIALS`` trials at the budget gets no importance (the
shares of the others are normalised without it): three draws of a conditional key say nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from vlp_sweep.report.budgets import MIN_TRIALS, Point
from vlp_sweep.report.types import Budget, Importance

ROUGH = 10  # fewer trials (at the budget, or where a key was active) than this: flagged as a rough indication

__all__ = ["MIN_TRIALS", "Importance", "distribution", "param_importance"]


def distribution(entry: dict[str, Any]) -> Any:
    """A spec ``search`` entry (``{choice: [...]}``, ``{loguniform: [lo, hi]}``, a coupled choice, a
    shaped W&B distribution, ...) -> the Optuna distribution of the values the leaderboard's ``params``
    hold for it. The one translation lives in the sweep's backends module."""
    from vlp_sweep.sweep.backends import optuna_distribution

    return optuna_distribution(entry)


def _trials(points: Sequence[Point], dists: dict[str, Any]) -> tuple[list[Any], int]:
    """Optuna FrozenTrials of the points (skipping ones whose params do not fit the space); skipped count."""
    import optuna

    out, skipped = [], 0
    for p in points:
        params = {k: v for k, v in p.params.items() if k in dists}
        try:
            out.append(optuna.trial.create_trial(params=params, distributions={k: dists[k] for k in params},
                                                 value=float(p.value)))
        except ValueError:  # a value outside the space (e.g. the space was edited before a resume)
            skipped += 1
    return out, skipped


def param_importance(points: Sequence[Point], search: dict[str, Any], mode: str,
                     budget: Budget | None = None) -> Importance:
    """Importance of each searched key for the points' metric (their ``value``), at one budget."""
    if not search:
        return Importance(note="the space searches no key", budget=budget)
    try:
        dists = {k: distribution(v) for k, v in search.items()}
    except (ValueError, TypeError) as e:
        return Importance(note=f"cannot rebuild the search space ({e})", budget=budget)
    trials, skipped = _trials(points, dists)
    n = len(trials)
    if n < MIN_TRIALS:
        return Importance(n_trials=n, note=f"needs >= {MIN_TRIALS} trials (have {n})", budget=budget)
    active = {k: sum(k in t.params for t in trials) for k in dists}
    unrated = {k: f"active in {c} trial{'s' if c != 1 else ''}, needs >= {MIN_TRIALS}"
               for k, c in active.items() if c < MIN_TRIALS}
    rated = [k for k in dists if k not in unrated]
    if not rated:
        return Importance(n_trials=n, note="no key was active in enough trials", budget=budget, unrated=unrated)
    if len({round(t.value, 12) for t in trials}) < 2:
        return Importance(n_trials=n, note=f"all {n} trials have the same value", budget=budget, unrated=unrated)
    notes = [f"{skipped} trials skipped (params outside the space)"] if skipped else []
    rough = [k for k in rated if active[k] < ROUGH]
    if n < ROUGH:
        notes.append(f"only {n} trials: a rough indication")
    elif rough:
        notes.append(f"{', '.join(rough)} active in fewer than {ROUGH} trials: rough")
    return Importance(values=_evaluate(trials, mode, n, rated), n_trials=n, note="; ".join(notes), budget=budget,
                      unrated=unrated)


def _evaluate(trials: list[Any], mode: str, n: int, params: list[str]) -> dict[str, float]:
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
        raw = get_param_importances(study, evaluator=evaluator, params=params, normalize=True)
    return {str(k): float(v) for k, v in sorted(raw.items(), key=lambda kv: -kv[1])}

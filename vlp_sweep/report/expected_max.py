"""Would more trials help? The expected best metric of n trials, from the trials the sweep ran.

Dodge et al. (2019), "Show Your Work: Improved Reporting of Experimental Results": take the N
trials' values as an empirical distribution; the best of n draws from it (with replacement) has
``P(max <= v_(i)) = (i / N) ** n`` for the sorted values ``v_(1) <= ... <= v_(N)``, so

    E[max of n] = sum_i v_(i) * ((i / N) ** n - ((i - 1) / N) ** n)

and its variance follows from the same weights. A curve still rising at n = N says more trials
would likely find a better configuration; a flat one says the space, not the count, limits the best.

The values are taken at one equal budget (``budgets.py``): the full budget when at least
``MIN_TRIALS`` trials reached it, else the highest ASHA rung with that many, since a value at epoch 2
and one at epoch 6 are draws from different distributions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vlp_sweep.report.budgets import MIN_TRIALS, Slice
from vlp_sweep.report.types import ExpectedBest


def expected_best(values: Sequence[float], mode: str = "max", n_max: int | None = None) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """Expected best (max, or min for ``mode='min'``) of n draws with replacement from ``values`` and its
    standard deviation, for n = 1 .. ``n_max`` (default: the number of values). Ties need no care: the
    weights of tied positions add up to the probability of their common value."""
    sign = 1.0 if mode == "max" else -1.0
    v = np.sort(sign * np.asarray(values, dtype=np.float64))
    if v.size == 0:
        raise ValueError("expected_best needs at least one value")
    big_n = v.size
    n = np.arange(1, (n_max or big_n) + 1, dtype=np.float64)[:, None]
    i = np.arange(1, big_n + 1, dtype=np.float64)[None, :]
    weights = (i / big_n) ** n - ((i - 1) / big_n) ** n  # [n, N]: P(best of n draws is v_(i))
    mean = weights @ v
    var = np.maximum(weights @ (v * v) - mean * mean, 0.0)  # rounding can dip below 0
    return sign * mean, np.sqrt(var)


def analyse(slices: list[Slice], metric: str, mode: str, search_alg: str) -> ExpectedBest:
    """The expected best of n trials at the highest budget with enough trials (the full budget first)."""
    usable = [s for s in slices if len(s.points) >= MIN_TRIALS]
    if not usable:
        most = max((len(s.points) for s in slices), default=0)
        return ExpectedBest(metric, mode, None, note=f"needs >= {MIN_TRIALS} trials at one budget "
                                                     f"(the most at any budget: {most})")
    chosen = usable[-1]
    values = [(p.trial_id, p.value) for p in chosen.points]
    mean, std = expected_best([v for _, v in values], mode)
    curve = [(n, float(m), float(s)) for n, (m, s) in enumerate(zip(mean, std), 1)]
    return ExpectedBest(metric, mode, chosen.budget, values, curve, _note(slices, chosen, search_alg))


def _note(slices: list[Slice], chosen: Slice, search_alg: str) -> str:
    full = slices[-1]
    if chosen is full:
        why = f"The full budget: {len(chosen.points)} trials reached it"
    else:
        why = (f"The highest budget with >= {MIN_TRIALS} trials (the full budget has {len(full.points)})")
    notes = [why]
    if chosen is not slices[0]:
        notes.append("only the trials the scheduler kept reach this budget, so the curve describes them rather "
                     "than fresh draws from the space, and leans optimistic")
    if search_alg == "optuna":
        notes.append("TPE proposes near earlier good trials, so its trials are not independent draws: "
                     "read the curve as a rough guide")
    return "; ".join(notes)

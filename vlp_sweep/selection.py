"""The one rule for "the best checkpoint of a trial", and the Ray score that makes Ray keep it.

The rule (:func:`selection_key`, smaller is better): the selection metric in its direction, then
``rsum`` (higher is better: a tie on one recall is broken by all six), then the earlier epoch (the same
quality reached with less training). A missing or non-finite value sorts last. Everything that picks a
trial's checkpoint uses it: the leaderboard's ``best_*`` columns and ``checkpoint_path``
(:func:`best_evaluation`), the ranking of trials in ``report`` and ``promote`` (the same key over the
trials' best rows, then the trial id), and the confirmation stage.

Ray's checkpoint retention must keep the checkpoint this rule names. Ray orders checkpoints by one
number (``CheckpointConfig.checkpoint_score_attribute``) and, on equal numbers, keeps the LATER one:
scored on the metric itself, a trial that reaches R@1 17.50 at epochs 5 and 6 keeps epoch 6 and deletes
epoch 5, which the rule names. So each evaluation reports :data:`SCORE` instead, from a
:class:`SelectionScore` kept by the trial: a new best under the rule scores strictly above every earlier
evaluation, any other strictly below the best so far. Ray's best is then always the rule's best, and
``num_to_keep: 1`` keeps exactly that file. Plain Python: no Ray, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["SCORE", "SCORE_ORDER", "SelectionScore", "best_evaluation", "finite_float", "selection_key",
           "trial_key"]

SCORE = "selection_score"  # the result key Ray's CheckpointConfig scores checkpoints by
SCORE_ORDER = "max"
TIE_METRIC = "rsum"
_E = TypeVar("_E", bound=Mapping[str, Any])
Key = tuple[float, float, float]


def finite_float(x: Any) -> float | None:
    """``x`` as a float, or None when it is missing, not a number, NaN or infinite."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def selection_key(values: Mapping[str, Any], epoch: Any, metric: str, mode: str) -> Key:
    """The rule as a sort key (smaller is better) of one evaluation; ``values`` maps metric names to
    numbers (a history row, a trainer result, a checkpoint's metrics)."""
    sign = -1.0 if mode == "max" else 1.0
    m, tie, e = finite_float(values.get(metric)), finite_float(values.get(TIE_METRIC)), finite_float(epoch)
    return (math.inf if m is None else sign * m,
            math.inf if tie is None else -tie,
            math.inf if e is None else e)


def best_evaluation(evaluations: Iterable[_E], metric: str, mode: str) -> _E | None:
    """The evaluation the rule picks among one trial's (each a mapping with an ``epoch``); None if none."""
    return min(evaluations, key=lambda ev: selection_key(ev, ev.get("epoch"), metric, mode), default=None)


def trial_key(row: Mapping[str, Any], metric: str, mode: str) -> tuple[float, float, float, str]:
    """The rule over trials: a leaderboard row's best evaluation (its ``best_*`` columns and
    ``best_epoch``) by :func:`selection_key`, then the trial id, so the order never depends on row order."""
    values = {metric: row.get(f"best_{metric}"), TIE_METRIC: row.get(f"best_{TIE_METRIC}")}
    return (*selection_key(values, row.get("best_epoch"), metric, mode), str(row.get("trial_id")))


@dataclass
class SelectionScore:
    """Per trial: turns each evaluation into the number Ray scores its checkpoint by (see the module
    docstring). ``state()``/``from_state()`` carry it across a trial restart (the trial saves the state
    next to each checkpoint)."""

    metric: str
    mode: str
    best_key: Key | None = None
    best_score: float | None = None

    def __call__(self, values: Mapping[str, Any], epoch: int) -> float:
        key = selection_key(values, epoch, self.metric, self.mode)
        v = finite_float(values.get(self.metric))
        # The metric itself (in "max" orientation) where it is a number, so the score still reads as it.
        raw = -key[0] if v is not None else -math.inf
        if self.best_key is None or self.best_score is None:
            score = raw if v is not None else -1e300  # a finite floor: later scores can go below it
        elif key < self.best_key:  # a new best: strictly above every earlier score
            score = max(raw, math.nextafter(self.best_score, math.inf))
        else:  # not the best: strictly below it
            return min(raw, math.nextafter(self.best_score, -math.inf))
        self.best_key, self.best_score = key, score
        return score

    def state(self) -> dict[str, Any]:
        return {"metric": self.metric, "mode": self.mode, "best_key": list(self.best_key or []) or None,
                "best_score": self.best_score}

    @classmethod
    def from_state(cls, metric: str, mode: str, state: Mapping[str, Any] | None) -> SelectionScore:
        """A keeper continuing ``state`` (ignored when it was for another metric or mode, or malformed)."""
        keeper = cls(metric, mode)
        if not state or state.get("metric") != metric or state.get("mode") != mode:
            return keeper
        key, score = state.get("best_key"), state.get("best_score")
        if isinstance(key, list) and len(key) == 3 and isinstance(score, (int, float)):
            keeper.best_key = (float(key[0]), float(key[1]), float(key[2]))
            keeper.best_score = float(score)
        return keeper

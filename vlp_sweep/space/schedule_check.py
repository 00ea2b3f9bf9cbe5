"""Does the learning-rate schedule let ASHA see each searched knob? Warnings computed from the data's size.

ASHA stops most trials at its first rungs (``grace_period * reduction_factor**k`` epochs). A warmup
that has not ended by then, or a cosine decay that has barely started, is judged as something else:
a warmup trial at 12% of its peak lr, a cosine trial as if its lr were constant. To say so, the
optimizer steps per epoch come from the trainer's own count (``train.schedule.optimizer_steps``) for every
batch size, accumulation and training-set size a trial can have, and the lr factor at each rung from the
trainer's own ``lr_factor``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from vlp_sweep.errors import UserError
from vlp_sweep.space.spec import SweepSpec
from vlp_sweep.train.schedule import lr_factor, optimizer_steps

COSINE_MIN_DECAY = 0.1  # a cosine that has lost less than this share of the peak lr "has barely started"
MAX_CASES = 20_000  # combinations enumerated at most (batch x accumulation x data x epochs x warmup x ...)


def steps_per_epoch(n: int, batch_size: int, grad_accum: int, workers: int = 1) -> int:
    """Optimizer steps per epoch, the trainer's own count (``train.schedule.optimizer_steps``); 0 when the
    split is too small to train."""
    try:
        return optimizer_steps(n, batch_size, grad_accum, workers)
    except UserError:
        return 0


def rung_epochs(scheduler: Any, epochs: int, eval_every: int = 1) -> list[int]:
    """The epochs at which ASHA judges a trial of ``epochs`` epochs (Ray's rungs: grace_period * rf**k up to
    max_t; a rung judges the first evaluation at or after it), before the trial's last epoch."""
    if scheduler.type != "asha":
        return []
    rf, grace = scheduler.reduction_factor, scheduler.grace_period
    n_rungs = int(math.log(scheduler.max_t / grace) / math.log(rf) + 1)
    out: list[int] = []
    for k in range(n_rungs):
        judged = min(epochs, math.ceil(grace * rf ** k / eval_every) * eval_every)
        if judged < min(epochs, scheduler.max_t) and judged not in out:
            out.append(judged)
    return out


@dataclass(frozen=True)
class Case:
    """One combination of the settings that decide a trial's schedule."""

    n: int  # training clips
    batch: int
    accum: int
    epochs: int
    warmup: int
    schedule: str
    eval_every: int
    workers: int

    @property
    def steps(self) -> int:
        return steps_per_epoch(self.n, self.batch, self.accum, self.workers)

    def factor(self, epoch: int) -> float:
        """The lr factor of the last optimizer step before the evaluation at ``epoch``."""
        return lr_factor(epoch * self.steps - 1, self.warmup, self.steps * self.epochs, self.schedule)

    def where(self) -> str:
        return (f"{self.steps} optimizer steps per epoch ({self.n} train clips, batch {self.batch} x grad_accum "
                f"{self.accum}{f' x {self.workers} workers' if self.workers > 1 else ''})")


def cases(spec: SweepSpec, train_sizes: list[int]) -> list[Case]:
    """Every combination a trial can have (a range contributes its two ends: steps per epoch and the lr
    factor are monotone in each setting)."""
    limits = [int(v) for v in spec.possible_values("data.limit_train")]
    ns = sorted({min(n, lim) if lim else n for n in train_sizes for lim in limits})
    batch, accum, epochs, warmup, every = (sorted({int(v) for v in spec.possible_values(k)}) for k in (
        "optim.batch_size", "optim.grad_accum", "optim.epochs", "optim.warmup_steps", "run.eval_every"))
    schedules = sorted({str(v) for v in spec.possible_values("optim.schedule")})
    if len(ns) * len(batch) * len(accum) * len(epochs) * len(warmup) * len(every) * len(schedules) > MAX_CASES:
        return []
    return [Case(n, b, a, e, w, s, ev, spec.resources.workers)
            for n, b, a, e, w, ev, s in itertools.product(ns, batch, accum, epochs, warmup, every, schedules)]


def schedule_warnings(spec: SweepSpec, train_sizes: list[int]) -> list[str]:
    """One line per searched schedule setting that ASHA cannot see act before its first rung (see the module
    docstring). Raises a one-line UserError when some trial could not train at all (a micro-batch under 2)."""
    all_cases = cases(spec, train_sizes)
    for c in all_cases:
        if c.steps == 0:
            raise UserError(f"{_label(spec, 'optim.grad_accum')}: {c.n} train clips are too few for batch {c.batch} x "
                            f"grad_accum {c.accum}{f' x {c.workers} workers' if c.workers > 1 else ''} (each "
                            "micro-batch needs 2 clips): those trials would fail")
    judged = [(c, rung_epochs(spec.scheduler, c.epochs, c.eval_every)) for c in all_cases]
    judged = [(c, r) for c, r in judged if r]
    return _warmup_lines(spec, judged) + _cosine_lines(spec, judged)


def _warmup_lines(spec: SweepSpec, judged: list[tuple[Case, list[int]]]) -> list[str]:
    out = []
    for w in sorted({c.warmup for c, _ in judged if c.warmup > 0}):
        late = [(c, r) for c, r in judged if c.warmup == w and w > r[0] * c.steps]
        if not late:
            continue
        c, rungs = min(late, key=lambda cr: (cr[0].steps, cr[1][0]))
        at = " and ".join(f"{c.factor(e):.0%}" for e in rungs[:2])
        epochs = " and ".join(map(str, rungs[:2]))
        out.append(f"{_label(spec, 'optim.warmup_steps')} {w}: the warmup lasts {w / c.steps:.1f} epochs at "
                   f"{c.where()}, longer than grace_period {spec.scheduler.grace_period}: the lr is at {at} of its "
                   f"peak at the ASHA rung{'s' if len(rungs) > 1 else ''} at epoch{'s' if len(rungs) > 1 else ''} "
                   f"{epochs}, so ASHA judges these trials before their warmup ends (keep the warmup under "
                   f"{rungs[0] * c.steps} steps, or raise grace_period)")
    return out


def _cosine_lines(spec: SweepSpec, judged: list[tuple[Case, list[int]]]) -> list[str]:
    if spec.setter("optim.schedule") is None:  # fixed: every trial has it, ASHA compares like with like
        return []
    cos = [(c, r) for c, r in judged if c.schedule == "cosine" and c.factor(r[0]) > 1 - COSINE_MIN_DECAY]
    if not cos:
        return []
    c, rungs = max(cos, key=lambda cr: cr[0].factor(cr[1][0]))
    at = " and ".join(f"{c.factor(e):.0%}" for e in rungs[:2])
    epochs = " and ".join(map(str, rungs[:2]))
    return [f"{_label(spec, 'optim.schedule')} cosine: at the ASHA rung{'s' if len(rungs) > 1 else ''} at epoch"
            f"{'s' if len(rungs) > 1 else ''} {epochs} (of {c.epochs}) the cosine has only brought the lr to {at} "
            "of its peak, so ASHA judges cosine trials as if their lr were constant and stops most of them before "
            "the decay acts (fix the schedule in base and compare it without early stopping, or raise grace_period)"]


def _label(spec: SweepSpec, key: str) -> str:
    p = spec.setter(key)
    return f"search.{p.key}" if p is not None else f"base.{key}"

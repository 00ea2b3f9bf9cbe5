"""The document's building blocks and the number formats every output shares."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vlp_sweep.report.stats import Interval, format_p
from vlp_sweep.report.types import Compared, Report, TrialLine
from vlp_sweep.report.values import value_label

TABLE_METRICS = ("t2v_R1", "t2v_R5", "t2v_R10", "t2v_MedR", "v2t_R1", "v2t_R5", "v2t_R10", "rsum")
INACTIVE = " (base)"  # after a conditional key's value in a trial that did not draw it
INACTIVE_NOTE = ("(base): a conditional key (when:) the trial did not draw, as its condition failed; "
                 "it ran with the base value or trainer default")


@dataclass
class Block:
    """One piece of the document, rendered by each output in its own way."""

    kind: str  # h1 | h2 | h3 | p | note | table | img | list
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    text_cols: tuple[int, ...] = (0,)  # table columns of words, not numbers (left-aligned)
    wrap_cols: tuple[int, ...] = ()  # table columns of prose (verdicts, methods, errors): they wrap in HTML


def fmt(x: Any, metric: str = "") -> str:
    """A number as the report prints it: ranks with one decimal at most, others with two; '-' for none."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and metric.endswith(("MedR", "MeanR")):
        return f"{x:.1f}".removesuffix(".0")
    if isinstance(x, float):
        return f"{x:.2f}"
    return str(x)


def fmt_ci(iv: Interval | None, metric: str = "") -> str:
    if iv is None:
        return "-"
    if math.isnan(iv.low):
        return fmt(iv.estimate, metric)
    return f"{fmt(iv.estimate, metric)} [{fmt(iv.low, metric)}, {fmt(iv.high, metric)}]"


def signed(x: float) -> str:
    return f"{x:+.2f}"


def pct(level: float) -> str:
    return f"{level * 100:g}%"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def trial_label(t: TrialLine, mark: str = " (baseline)") -> str:
    return t.trial_id + mark if t.baseline else t.trial_id


def config_cell(t: TrialLine, key: str, show: Callable[[Any], str] = value_label) -> str:
    return show(t.config.get(key)) + (INACTIVE if key in t.inactive else "")


def shows_inactive(rep: Report) -> bool:
    return any(t.inactive & set(rep.varying) for t in rep.table)


def table_metrics(rep: Report) -> tuple[str, ...]:
    return TABLE_METRICS + ((rep.metric,) if rep.metric not in TABLE_METRICS else ())


def summary(rep: Report) -> str:
    """The report's first paragraph: the sweep, its trials, and the best finished one."""
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(rep.counts.items()))
    best = ""
    if rep.best:
        iv = rep.intervals.get(rep.best.trial_id, {}).get(rep.metric)
        val = fmt_ci(iv, rep.metric) if iv else fmt(rep.best.metrics.get(rep.metric), rep.metric)
        best = (f" Best finished trial of the search: {rep.best.trial_id} with {rep.metric} {val} (epoch "
                f"{rep.best.best_epoch}; a selection number, on the split that chose it).")
    return (f"Sweep {rep.sweep} ({rep.sweep_status}), {sum(rep.counts.values())} trials: {counts}. "
            f"Metric {rep.metric} ({rep.mode}).{best}")


def target_state(ok: bool | None, reference: bool) -> str:
    if reference:
        return "reference"
    return "-" if ok is None else "pass" if ok else "fail"


def selection_label(c: Compared) -> str:
    """A selection comparison's name with its footing: "best vs runner-up at epoch 4 (the last both reached)"."""
    if c.epoch is not None:
        return f"{c.label} at epoch {c.epoch} (the last both reached)"
    if c.double_selected:
        return f"{c.label} (double-selected: each at its best epoch)"
    return c.label


def selection_p(c: Compared) -> str:
    """The p-value of a selection comparison, said to be no verdict ("p = 0.27, no verdict")."""
    assert c.result is not None
    return f"{format_p(c.result.p, c.result.resamples)}, no verdict"

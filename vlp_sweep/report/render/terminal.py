"""The report in the terminal: the leaderboard as a rich table, then one line per verdict and analysis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vlp_sweep.report.render import monitoring
from vlp_sweep.report.render.blocks import (
    INACTIVE_NOTE,
    config_cell,
    fmt,
    pct,
    selection_label,
    selection_p,
    shows_inactive,
    signed,
    summary,
    target_state,
    trial_label,
)
from vlp_sweep.report.types import Report
from vlp_sweep.report.values import value_label
from vlp_sweep.report.verdicts.headline import difference
from vlp_sweep.sweep.tables.results import error_groups, which

TERMINAL_METRICS = {"t2v_R1": "t2v R@1", "t2v_R5": "R@5", "t2v_R10": "R@10", "t2v_MedR": "MedR",
                    "v2t_R1": "v2t R@1"}
STATUS_WORDS = {"TERMINATED": "done", "STOPPED": "stopped", "RUNNING": "running", "ERROR": "error",
                "INTERRUPTED": "interrupted"}


def print_terminal(rep: Report, written: dict[str, Path] | None = None) -> None:
    from rich.console import Console

    table = _table(rep)
    # As wide as the table needs (up to 220 columns), so that headers and values are never folded;
    # a narrower terminal wraps the lines instead.
    natural = Console(width=220).measure(table).maximum
    console = Console(width=max(Console().width, min(220, natural)), highlight=False)
    console.print(summary(rep), markup=False)
    if rep.model:
        console.print(rep.model, markup=False)
    for n in rep.notes:
        console.print(f"note: {n}", markup=False)
    console.print(table)
    if any(t.baseline for t in rep.table):
        console.print("* the baseline trial (baseline.run): the baseline's config, not a searched one", markup=False)
    if shows_inactive(rep):
        console.print(INACTIVE_NOTE, markup=False)
    for line in summary_lines(rep):
        console.print(line, markup=False)
    for name, path in (written or {}).items():
        if name.startswith("report."):
            console.print(f"wrote {path}", markup=False)


def _short_keys(keys: list[str]) -> dict[str, str]:
    """``loss.hard_negatives`` -> ``hard_negatives`` where the field name alone is unambiguous."""
    fields = [k.split(".", 1)[-1] for k in keys]
    return {k: f if fields.count(f) == 1 else k for k, f in zip(keys, fields)}


def _short_value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else value_label(v)


def _table(rep: Report) -> Any:
    from rich.table import Table

    metrics = list(TERMINAL_METRICS) + ([rep.metric] if rep.metric not in TERMINAL_METRICS else [])
    short = _short_keys(rep.varying)
    table = Table(show_lines=False, pad_edge=False)
    for col in ["#", "trial", "status", "ep", *short.values(), *[TERMINAL_METRICS.get(m, m) for m in metrics],
                f"{pct(rep.level)} CI"]:
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for i, t in enumerate(rep.table, 1):
        iv = rep.intervals.get(t.trial_id, {}).get(rep.metric)
        table.add_row(str(i), trial_label(t, "*"), STATUS_WORDS.get(t.status, t.status.lower()), fmt(t.best_epoch),
                      *[config_cell(t, k, _short_value) for k in rep.varying],
                      *[fmt(t.metrics.get(m), m) for m in metrics],
                      f"{fmt(iv.low, rep.metric)}-{fmt(iv.high, rep.metric)}" if iv else "-")
    return table


def summary_lines(rep: Report) -> list[str]:
    """One line per comparison, target, and analysis (importance, expected best), then the errors."""
    out = confirmed_lines(rep)
    for c in rep.comparisons:
        r = c.result
        if r is None:
            out.append(f"{selection_label(c)}: {c.note}")
            continue
        out.append(f"{selection_label(c)} (selection numbers, {c.a} vs {c.b}): {r.metric} {signed(r.diff)} "
                   f"[{signed(r.low)}, {signed(r.high)}], {selection_p(c)}" + (f" ({c.note})" if c.note else ""))
    unjudged = " (other data), not judged" if rep.data.synthetic else ""
    for row in rep.targets:
        for lv, thr, ok in row.levels:
            out.append(f"target {lv}: {row.metric} {fmt(row.best, row.metric)} vs {fmt(thr, row.metric)}: "
                       f"{target_state(ok, rep.data.synthetic)}{unjudged}")
    return [*out, _importance_line(rep), _expected_best_line(rep), monitoring.line(rep), *error_lines(rep.errors)]


MAX_ERROR_LINES = 10


def error_lines(errors: list[tuple[str, str]]) -> list[str]:
    """One line per distinct error (the most frequent first, at most 10), naming its trials."""
    groups = error_groups(errors)
    out = [f"ERROR {ts[0]}: {e}" if len(ts) == 1 else f"ERROR x{len(ts)} ({which(ts)}): {e}"
           for e, ts in groups[:MAX_ERROR_LINES]]
    if len(groups) > MAX_ERROR_LINES:
        rest = groups[MAX_ERROR_LINES:]
        out.append(f"ERROR: {len(rest)} other errors in {sum(len(t) for _, t in rest)} trials (see the report)")
    return out


def confirmed_lines(rep: Report) -> list[str]:
    """The confirmed headline, the lines after it, failed runs, and which change earned the gain."""
    conf = rep.confirmed
    if conf is None:
        return []
    out = [f"confirmed: {conf.headline}", *(f"  {line}" for line in conf.lines)]
    out += [f"confirmed {c.config_id}: FAILED seed {r.seed}: {r.error}" for c in conf.configs for r in c.runs
            if r.status != "TERMINATED"]
    att = conf.attribution
    if att is not None and att.rows:
        parts = [f"{a.key} {difference(a.comparison.result)} {a.comparison.verdict}" if a.comparison.result
                 else f"{a.key}: {a.comparison.verdict}" for a in att.rows]
        out.append(f"which change earned it ({conf.metric}, {att.winner} minus the key reverted): " + "; ".join(parts))
    elif att is not None:
        out.append(f"which change earned it: {att.note}")
    return out


def _importance_line(rep: Report) -> str:
    rated = [imp for imp in rep.importance if imp.values]
    if not rated:
        return "importance: " + ("; ".join(imp.note for imp in rep.importance) or "no finished trial")
    imp = rated[-1]  # the highest budget with enough trials
    where = imp.budget.label if imp.budget else ""
    return f"importance at {where}: " + ", ".join(f"{k} {v:.2f}" for k, v in list(imp.values.items())[:5])


def _expected_best_line(rep: Report) -> str:
    eb = rep.expected_best
    if not eb.curve or eb.budget is None:
        return f"expected best of n trials: {eb.note}"
    picks = sorted({1, max(1, len(eb.curve) // 2), len(eb.curve)})
    return (f"expected best {eb.metric} of n trials at {eb.budget.label}: "
            + ", ".join(f"n={n} {fmt(eb.curve[n - 1][1], eb.metric)}" for n in picks))

"""The report as one document (a list of blocks) that Markdown and HTML write out.

The document is the sections of :data:`SECTIONS` in order; each is a function of the report and the
figure files that exist. A new section is one more function in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable

from vlp_sweep.report.render import analyses, confirmation, monitoring, verdicts
from vlp_sweep.report.render.blocks import (
    INACTIVE_NOTE,
    Block,
    config_cell,
    fmt,
    fmt_ci,
    pct,
    plural,
    shows_inactive,
    summary,
    table_metrics,
    trial_label,
)
from vlp_sweep.report.trials import CI_METRICS
from vlp_sweep.report.types import Report, TrialLine
from vlp_sweep.sweep.tables.results import error_groups, which

Section = Callable[[Report, set[str]], list[Block]]


def header(rep: Report, images: set[str]) -> list[Block]:
    model = [Block("p", rep.model)] if rep.model else []
    return [Block("h1", f"Sweep report: {rep.sweep}"), Block("p", summary(rep)), *model,
            *[Block("note", n) for n in rep.notes]]


def _trial_cells(t: TrialLine, rep: Report, i: int) -> list[str]:
    cells = [str(i), trial_label(t), t.status.lower(), fmt(t.epochs), fmt(t.best_epoch)]
    cells += [config_cell(t, k) for k in rep.varying]
    cells += [fmt(t.metrics.get(m), m) for m in table_metrics(rep)]
    return cells


def leaderboard(rep: Report, images: set[str]) -> list[Block]:
    headers = ["#", "trial", "status", "epochs", "best epoch", *rep.varying, *table_metrics(rep)]
    rows = [_trial_cells(t, rep, i) for i, t in enumerate(rep.table, 1)]
    n = sum(v for k, v in rep.counts.items() if k != "PENDING")
    inactive = f" {INACTIVE_NOTE}." if shows_inactive(rep) else ""
    return [Block("h2", f"Leaderboard (top {len(rep.table)}, by {rep.metric})"),
            Block("p", f"Config keys that vary across the sweep's {n} trials are shown; metrics are the "
                       f"leaderboard's best_* columns (the epoch whose checkpoint is kept): selection numbers, "
                       f"each trial at its own best epoch on the eval split.{inactive}"),
            Block("table", headers=headers, rows=rows, text_cols=(1, 2))]


def intervals(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", f"Confidence intervals ({pct(rep.level)}, bootstrap over queries)")]
    if not rep.intervals:
        return [*out, Block("p", "No per-query ranks on disk for the listed trials (their ranks/ folders).")]
    headers = ["trial", "epoch", "queries", *CI_METRICS]
    rows = []
    for t in rep.table:
        ivs = rep.intervals.get(t.trial_id)
        if ivs:
            n = next(iter(ivs.values())).n
            rows.append([t.trial_id, str(rep.interval_epochs.get(t.trial_id, "-")), str(n),
                         *[fmt_ci(ivs.get(m), m) for m in CI_METRICS]])
    out.append(Block("table", headers=headers, rows=rows))
    if "intervals.png" in images:
        out.append(Block("img", "intervals.png"))
    return out


def learning_curves(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", "Learning curves")]
    if "learning_curves.png" not in images:
        return [*out, Block("p", "No evaluations in the history yet.")]
    return [*out, Block("p", f"The top {len(rep.curves)} trials, every evaluation (the history); right: "
                             f"{rep.curve_loss[1]}."), Block("img", "learning_curves.png")]


MAX_ERROR_LINES = 20  # distinct errors listed; the leaderboard's error column has every trial's


def errors(rep: Report, images: set[str]) -> list[Block]:
    """Errored trials grouped by their error, the most frequent first: a few lines however many trials."""
    out = [Block("h2", f"Errored trials ({len(rep.errors)})")]
    if not rep.errors:
        return [*out, Block("p", "None.")]
    groups = error_groups(rep.errors)
    rows = [[e, str(len(ts)), which(ts, 5)] for e, ts in groups[:MAX_ERROR_LINES]]
    out.append(Block("table", headers=["error", "trials", "which"], rows=rows, text_cols=(0, 2), wrap_cols=(0, 2)))
    if len(groups) > MAX_ERROR_LINES:
        rest = groups[MAX_ERROR_LINES:]
        n = sum(len(t) for _, t in rest)
        out.append(Block("p", f"And {plural(len(rest), 'other error')} in {plural(n, 'trial')} (leaderboard.parquet's "
                              "error column holds every trial's)."))
    return out


def sources(rep: Report, images: set[str]) -> list[Block]:
    return [Block("h2", "Where the numbers come from"), Block("list", items=rep.sources),
            Block("p", f"Intervals: percentile bootstrap over the evaluation queries, {rep.resamples} "
                       f"resamples, seeded; comparisons resample the same queries for both sides (paired) and "
                       f"give a two-sided p from the bootstrap distribution of the difference. Generated "
                       f"{rep.generated}.")]


SECTIONS: tuple[Section, ...] = (
    header, confirmation.confirmed, leaderboard, verdicts.comparisons, verdicts.baseline_and_targets, intervals,
    learning_curves, analyses.effects, analyses.importance, analyses.more_trials, monitoring.section, errors,
    sources)


def document(rep: Report, images: set[str]) -> list[Block]:
    """The report as blocks; ``images`` are the figure files that exist."""
    return [b for section in SECTIONS for b in section(rep, images)]

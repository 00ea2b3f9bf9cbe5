"""Document sections that judge: the best trial against the runner-up and the baseline, and the targets."""

from __future__ import annotations

from vlp_sweep.metric_names import MODE
from vlp_sweep.report.render.blocks import (
    Block,
    fmt,
    fmt_ci,
    pct,
    selection_label,
    selection_p,
    signed,
    target_state,
)
from vlp_sweep.report.types import Report


def comparisons(rep: Report, images: set[str]) -> list[Block]:
    headers = ["comparison", "A", "B", "metric", "A value", "B value", f"A - B [{pct(rep.level)} CI]",
               "p (selection numbers)", "method"]
    rows = []
    for c in rep.comparisons:
        r = c.result
        if r is None:
            rows.append([selection_label(c), c.a, c.b, "-", "-", "-", "-", c.note, "-"])
            continue
        rows.append([selection_label(c), c.a, c.b, r.metric, fmt(r.a, r.metric), fmt(r.b, r.metric),
                     f"{signed(r.diff)} [{signed(r.low)}, {signed(r.high)}]",
                     selection_p(c) + (f" ({c.note})" if c.note else ""), f"{r.method}, {r.n} queries"])
    verdict = ("the confirmed comparison above is the only one with a verdict" if rep.confirmed is not None
               else "with no confirmation stage (confirm: none), no comparison here is a verdict")
    return [Block("h2", "Selection numbers: the best trial against the runner-up and the baseline"),
            Block("p", "Trials on the eval split, the split that selected them: selection numbers, which favour "
                       "the selected trial. The runner-up is compared at the last epoch both trials reached "
                       "(ASHA may have stopped it early); the baseline at each trial's best epoch, which selects "
                       f"twice (the best trial of the search, and its best epoch). The p-values are shown; "
                       f"{verdict}."),
            Block("table", headers=headers, rows=rows, text_cols=(0, 1, 3), wrap_cols=(0, 2, 7, 8))]


def _baseline_line(rep: Report) -> Block:
    b = rep.baseline
    if b is None:
        return Block("p", "The space names no baseline.")
    src = f"from {b.source}" if b.source else "no numbers"
    return Block("p", f"Baseline: {b.name} ({src})" + (f"; {b.note}." if b.note else "."))


def baseline_and_targets(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", "Baseline and targets"), _baseline_line(rep)]
    levels = list(dict.fromkeys(lv for row in rep.targets for lv, _, _ in row.levels))
    if not levels:
        out.append(Block("p", "The space sets no targets."))
    elif rep.data.synthetic:
        out.append(Block("p", "The space's targets were set for real data; this sweep ran on synthetic data, so they "
                              "are reference numbers: no pass or fail."))
    if not rep.targets:
        return out
    best = rep.best.trial_id if rep.best else "-"
    b = rep.baseline
    reference = " (reference, other data)" if b is not None and b.reference else ""
    stated = any(row.stated is not None for row in rep.targets)
    headers = ["metric", "baseline" + ("" if stated else reference),
               *([f"baseline as stated{reference}"] if stated else []),
               f"best ({best}) [{pct(rep.level)} CI]", *levels]
    rows = []
    for row in rep.targets:
        cells = [row.metric, fmt(row.baseline, row.metric), *([fmt(row.stated, row.metric)] if stated else []),
                 fmt_ci(row.interval, row.metric) if row.interval else fmt(row.best, row.metric)]
        by_level = {lv: (thr, ok) for lv, thr, ok in row.levels}
        for lv in levels:
            if lv not in by_level:
                cells.append("-")
                continue
            thr, ok = by_level[lv]
            op = ">=" if MODE.get(row.metric, "max") == "max" else "<="
            cells.append(f"{op} {fmt(thr, row.metric)}: {target_state(ok, rep.data.synthetic)}")
        rows.append(cells)
    return [*out, Block("table", headers=headers, rows=rows)]

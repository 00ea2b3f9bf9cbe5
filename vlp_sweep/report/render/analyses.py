"""Document sections of the equal-budget analyses: per-key effects, parameter importance, and the expected
best of n trials ("Would more trials help?")."""

from __future__ import annotations

import math

from vlp_sweep.report.budgets import MIN_TRIALS
from vlp_sweep.report.render.blocks import Block, fmt, fmt_ci, pct, plural, signed
from vlp_sweep.report.types import Effect, EffectAt, EffectRow, Importance, Report


def _budgets_text(rep: Report) -> str:
    labels = ", ".join(f"{b.label}: {plural(b.n, 'trial')}" for b in rep.budgets) or "none"
    skipped = [b for b in rep.budgets if b.no_eval]
    extra = "" if not skipped else " Trials without an evaluation at a budget's epoch (run.eval_every) are left " \
        "out there: " + ", ".join(f"{b.label}: {b.no_eval}" for b in skipped) + "."
    return (f"Finished searched trials (not the baseline trial) compared at equal budgets, each with its "
            f"{rep.metric} at that epoch (the history), not at its best epoch. Budgets: {labels}. At a higher "
            f"rung only the trials the scheduler kept remain, a selected set.{extra}")


def _cell(r: EffectRow | None, metric: str) -> str:
    if r is None:
        return "-"
    if r.n < 2:
        return f"{fmt(r.mean.estimate, metric)} (1 trial: no interval)"
    return f"{fmt_ci(r.mean, metric)} ({r.n} trials)"


def _effect_blocks(e: Effect, metric: str) -> list[Block]:
    title = Block("h3", f"{e.key} ({e.kind}{', log scale' if e.log else ''})")
    ats: list[EffectAt] = [a for a in e.at if a.points]
    if not ats:
        return [title, Block("p", "No finished trial at any budget drew it.")]
    headers = ["value", *[f"{a.budget.label}: {plural(len(a.points), 'trial')}" for a in ats]]
    rows = []
    for label in e.labels:
        by_budget = [next((r for r in a.rows if r.label == label), None) for a in ats]
        if any(by_budget):
            rows.append([label, *[_cell(r, metric) for r in by_budget]])
    out = [title, Block("table", headers=headers, rows=rows)]
    inactive = [a for a in ats if a.inactive]
    if inactive:
        out.append(Block("p", "Inactive (its when: condition failed), so not counted: "
                              + ", ".join(f"{plural(a.inactive, 'trial')} at {a.budget.label}" for a in inactive)
                              + "."))
    return out


def effects(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", "Effect of each searched key, at equal budgets"), Block("p", _budgets_text(rep)),
           Block("p", f"Per value (continuous keys: up to three bins by value), the mean {rep.metric} with a "
                      f"{pct(rep.level)} Student-t interval over the trials, clipped to the metric's range; a value "
                      "with one trial has none. A conditional key counts only the trials where it was active. "
                      "Other keys vary too, so these are marginal effects.")]
    if not rep.effects:
        return [*out, Block("p", "The space searches no key.")]
    for e in rep.effects:
        out += _effect_blocks(e, rep.metric)
    if "effects.png" in images:
        out.append(Block("img", "effects.png"))
    return out


def _importance_cell(imp: Importance, key: str) -> str:
    if key in imp.values:
        return f"{imp.values[key]:.3f}"
    if key in imp.unrated:
        return f"- ({imp.unrated[key]})"
    return "-"


def importance(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", "Parameter importance, at equal budgets")]
    rated = [imp for imp in rep.importance if imp.values]
    if not rated:
        why = "; ".join(f"{imp.budget.label if imp.budget else 'all'}: {imp.note}" for imp in rep.importance)
        return [*out, Block("p", f"Not computed: {why or 'no finished trial'}.")]
    out.append(Block("p", f"{rated[0].method} at each budget, from the trials there and their {rep.metric} at that "
                          f"epoch; shares sum to 1 over the keys rated at a budget. A budget needs >= {MIN_TRIALS} "
                          f"trials, and a key >= {MIN_TRIALS} trials where it was active."))
    last = rated[-1].values
    keys = sorted({k for imp in rep.importance for k in (*imp.values, *imp.unrated)},
                  key=lambda k: (-last.get(k, -1.0), k))
    headers = ["key", *[f"{imp.budget.label if imp.budget else ''}: {plural(imp.n_trials, 'trial')}"
                        for imp in rep.importance]]
    out.append(Block("table", headers=headers,
                     rows=[[k, *[_importance_cell(imp, k) for imp in rep.importance]] for k in keys]))
    notes = [f"{imp.budget.label if imp.budget else ''}: {imp.note}" for imp in rep.importance if imp.note]
    if notes:
        out.append(Block("list", items=notes))
    if "importance.png" in images:
        out.append(Block("img", "importance.png"))
    return out


def _shown_n(total: int) -> list[int]:
    """1, 2, 4, ... and the last n: the rows of the expected-best table."""
    ns = [2**k for k in range(int(math.log2(total)) + 1)]
    return ns if ns[-1] == total else [*ns, total]


def more_trials(rep: Report, images: set[str]) -> list[Block]:
    eb = rep.expected_best
    out = [Block("h2", "Would more trials help?")]
    if not eb.curve or eb.budget is None:
        return [*out, Block("p", f"Not computed: {eb.note}.")]
    word = "highest" if eb.mode == "max" else "lowest"
    out.append(Block("p", f"The expected best ({word}) {eb.metric} of n trials drawn from the {len(eb.values)} "
                          f"trials at {eb.budget.label}, each at that epoch (Dodge et al., 2019, \"Show Your Work\"), "
                          f"with its standard deviation. {eb.note}. A curve still rising at the last n says more "
                          "trials would likely find a better configuration; a flat one, that the space limits "
                          "the best."))
    rows = [[str(n), fmt(m, eb.metric), fmt(s, eb.metric)] for n, m, s in eb.curve if n in _shown_n(len(eb.curve))]
    out.append(Block("table", headers=["trials (n)", f"expected best {eb.metric}", "std"], rows=rows))
    big = len(eb.curve)
    if big >= 2:
        gain = eb.curve[-1][1] - eb.curve[big // 2 - 1][1]
        out.append(Block("p", f"From n = {big // 2} to n = {big}: {signed(gain)} (std at n = {big}: "
                              f"{fmt(eb.curve[-1][2], eb.metric)})."))
    if "expected_best.png" in images:
        out.append(Block("img", "expected_best.png"))
    return out

"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

Each function returns None when there is nothing to draw, so the report can say so instead. In the
equal-budget figures each budget (ASHA rung, full budget) has its own colour.
"""

from __future__ import annotations

import io
import math
from typing import Any

from vlp_sweep.report.trials import CI_METRICS
from vlp_sweep.report.types import Effect, EffectAt, ExpectedBest, Importance, Report
from vlp_sweep.report.values import value_label


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: never opens a window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def learning_curves(rep: Report) -> bytes | None:
    curves = {t: c for t, c in rep.curves.items() if c}
    if not curves:
        return None
    plt = _plt()
    loss, loss_title = rep.curve_loss
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for tid, rows in curves.items():
        epochs = [r["epoch"] for r in rows]
        axes[0].plot(epochs, [_nan(r.get(rep.metric)) for r in rows], marker="o", ms=3, label=tid)
        axes[1].plot(epochs, [_nan(r.get(loss)) for r in rows], marker="o", ms=3, label=tid)
    axes[0].set(title=f"{rep.metric} on the eval split", xlabel="epoch", ylabel=rep.metric)
    axes[1].set(xlabel="epoch", ylabel=loss)
    axes[1].set_title(loss_title, fontsize=9 if len(loss_title) > 40 else None, wrap=True)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, title="trial", title_fontsize=7)
    return _png(fig)


def intervals(rep: Report) -> bytes | None:
    """Forest plot: R@1/5/10 of each top trial with its bootstrap interval, both directions."""
    trials = [t.trial_id for t in rep.table if t.trial_id in rep.intervals]
    if not trials:
        return None
    plt = _plt()
    metrics = [m for m in CI_METRICS if any(m in rep.intervals[t] for t in trials)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.2 * len(metrics) + 1, 0.4 * len(trials) + 2.0),
                             sharey=True, squeeze=False)
    ys = list(range(len(trials)))[::-1]
    best = rep.best.trial_id if rep.best else ""
    for ax, m in zip(axes[0], metrics):
        for y, tid in zip(ys, trials):
            iv = rep.intervals[tid].get(m)
            if iv is not None:
                ax.errorbar(iv.estimate, y, xerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]], fmt="o",
                            ms=4, capsize=3, color="C3" if tid == best else "C0")
        ax.set(title=m, xlabel="%")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(ys, trials, fontsize=8)
    fig.suptitle(f"{int(rep.level * 100)}% bootstrap intervals over queries (best trial in red)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def effects(rep: Report) -> bytes | None:
    drawn = [e for e in rep.effects if any(a.points for a in e.at)]
    if not drawn:
        return None
    plt = _plt()
    cols = min(3, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    colours = {b.label: f"C{i}" for i, b in enumerate(rep.budgets)}
    for ax, e in zip(axes.flat, drawn):
        ats = [a for a in e.at if a.points]
        for j, a in enumerate(ats):
            offset = (j - (len(ats) - 1) / 2) * 0.18
            if e.kind == "categorical":
                _categorical(ax, e, a, offset, colours[a.budget.label])
            else:
                ax.scatter([float(v) for v, _, _ in a.points], [y for _, y, _ in a.points], s=16, alpha=0.7,
                           color=colours[a.budget.label])
        if e.kind == "categorical":
            ax.set_xticks(range(len(e.labels)), e.labels)
            ax.set_xlim(-0.6, len(e.labels) - 0.4)
        elif e.log:
            ax.set_xscale("log")
        ax.set(title=e.key, ylabel=rep.metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(drawn):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], marker="D", ls="", color=c, label=lab) for lab, c in colours.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
    fig.suptitle("each dot a trial at one budget (its metric at that epoch); diamond: mean with t interval "
                 "over trials", fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _png(fig)


def _categorical(ax: Any, e: Effect, a: EffectAt, offset: float, colour: str) -> None:
    for i, label in enumerate(e.labels):
        ys = [y for v, y, _ in a.points if value_label(v) == label]
        ax.scatter([i + offset] * len(ys), ys, s=12, alpha=0.5, color=colour)
        row = next((r for r in a.rows if r.label == label), None)
        if row is not None:
            m = row.mean
            err = None if math.isnan(m.low) else [[m.estimate - m.low], [m.high - m.estimate]]
            ax.errorbar(i + offset, m.estimate, yerr=err, fmt="D", color=colour, mec="black", ms=5, capsize=3)


def importance(imps: list[Importance]) -> bytes | None:
    rated = [imp for imp in imps if imp.values]
    if not rated:
        return None
    plt = _plt()
    keys = sorted({k for imp in rated for k in imp.values}, key=lambda k: rated[-1].values.get(k, -1.0))
    height = 0.8 / len(rated)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(keys) * max(1, len(rated) / 2) + 1.4))
    for j, imp in enumerate(rated):
        ys = [i - (j - (len(rated) - 1) / 2) * height for i in range(len(keys))]  # lowest budget on top
        ax.barh(ys, [imp.values.get(k, 0.0) for k in keys], height=height, color=f"C{j}",
                label=imp.budget.label if imp.budget else "")
    ax.set_yticks(range(len(keys)), keys)
    ax.set(xlabel="importance (share at the budget)", title="parameter importance at each budget (PED-ANOVA)")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    return _png(fig)


def expected_best(eb: ExpectedBest) -> bytes | None:
    if not eb.curve or eb.budget is None:
        return None
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    n = [c[0] for c in eb.curve]
    mean = [c[1] for c in eb.curve]
    values = [v for _, v in eb.values]
    lo, hi = min(values), max(values)  # the band cannot leave the values the trials reached
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.fill_between(n, [max(lo, m - s) for _, m, s in eb.curve], [min(hi, m + s) for _, m, s in eb.curve],
                    color="C0", alpha=0.2, label="± 1 std")
    ax.plot(n, mean, marker="o", ms=3, color="C0", label="expected best")
    ax.set(xlabel="trials (n)", ylabel=eb.metric, title=f"expected best {eb.metric} of n trials, {eb.budget.label}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def all_plots(rep: Report) -> dict[str, bytes]:
    """File name -> PNG bytes of every figure that has something to show."""
    figs = {"learning_curves.png": learning_curves(rep), "intervals.png": intervals(rep),
            "effects.png": effects(rep), "importance.png": importance(rep.importance),
            "expected_best.png": expected_best(rep.expected_best)}
    return {k: v for k, v in figs.items() if v is not None}

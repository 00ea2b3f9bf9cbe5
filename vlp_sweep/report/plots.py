"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

Each function returns None when there is nothing to draw, so the report can say so instead.
"""

from __future__ import annotations

import io
import math
from typing import Any

from vlp_sweep.report.build import CI_METRICS, Effect, Report, value_label
from vlp_sweep.report.importance import Importance


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


def learning_curves(rep: Report) -> bytes | None:
    curves = {t: c for t, c in rep.curves.items() if c}
    if not curves:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for tid, rows in curves.items():
        epochs = [r["epoch"] for r in rows]
        axes[0].plot(epochs, [_nan(r.get(rep.metric)) for r in rows], marker="o", ms=3, label=tid)
        axes[1].plot(epochs, [_nan(r.get("eval_loss")) for r in rows], marker="o", ms=3, label=tid)
    axes[0].set(title=f"{rep.metric} on the eval split", xlabel="epoch", ylabel=rep.metric)
    axes[1].set(title="eval loss", xlabel="epoch", ylabel="loss")
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
    for ax, m in zip(axes[0], metrics):
        for y, tid in zip(ys, trials):
            iv = rep.intervals[tid].get(m)
            if iv is not None:
                ax.errorbar(iv.estimate, y, xerr=[[iv.estimate - iv.low], [iv.high - iv.estimate]], fmt="o",
                            ms=4, capsize=3, color="C0" if tid != (rep.best.trial_id if rep.best else "") else "C3")
        ax.set(title=m, xlabel="%")
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(ys, trials, fontsize=8)
    fig.suptitle(f"{int(rep.level * 100)}% bootstrap intervals over queries (best trial in red)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def effects(rep: Report) -> bytes | None:
    drawn = [e for e in rep.effects if e.points]
    if not drawn:
        return None
    plt = _plt()
    cols = min(3, len(drawn))
    rows = math.ceil(len(drawn) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, e in zip(axes.flat, drawn):
        (_categorical if e.kind == "categorical" else _continuous)(ax, e)
        ax.set(title=e.key, ylabel=rep.metric)
        ax.set_ylim(*_ylim(e))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(drawn):]:
        ax.axis("off")
    fig.suptitle("each point a finished trial (bar: its interval over queries); black: mean with t interval "
                 "over trials", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _categorical(ax: Any, e: Effect) -> None:
    labels = [r.label for r in e.rows]
    for i, r in enumerate(e.rows):
        pts = [p for p in e.points if value_label(p[0]) == r.label]
        for j, (_, y, lo, hi, _tid) in enumerate(pts):
            x = i + (j - (len(pts) - 1) / 2) * 0.06  # small spread so equal values stay visible
            _point(ax, x, y, lo, hi)
        m = r.mean
        err = None if math.isnan(m.low) else [[m.estimate - m.low], [m.high - m.estimate]]
        ax.errorbar(i + 0.25, m.estimate, yerr=err, fmt="D", color="black", ms=5, capsize=4)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _continuous(ax: Any, e: Effect) -> None:
    for v, y, lo, hi, _tid in e.points:
        _point(ax, float(v), y, lo, hi)
    if e.log:
        ax.set_xscale("log")
    ax.set_xlabel("value")


def _ylim(e: Effect) -> tuple[float, float]:
    """The trials' values and intervals set the scale; a wide t interval of two trials is cut at the edge
    rather than squashing every point into a line."""
    vals = [v for p in e.points for v in p[1:4] if not math.isnan(v)] + [r.mean.estimate for r in e.rows]
    lo, hi = min(vals), max(vals)
    pad = 0.12 * (hi - lo) if hi > lo else max(1.0, abs(hi) * 0.1)
    return lo - pad, hi + pad


def _point(ax: Any, x: float, y: float, lo: float, hi: float) -> None:
    err = None if math.isnan(lo) else [[y - lo], [hi - y]]
    ax.errorbar(x, y, yerr=err, fmt="o", color="C0", alpha=0.7, ms=4, capsize=2)


def importance(imp: Importance) -> bytes | None:
    if not imp.values:
        return None
    plt = _plt()
    keys = list(imp.values)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(keys) + 1.2))
    ax.barh(keys, [imp.values[k] for k in keys], color="C2")
    ax.set(xlabel="importance (share)", title=f"parameter importance, {imp.n_trials} finished trials")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def all_plots(rep: Report) -> dict[str, bytes]:
    """File name -> PNG bytes of every figure that has something to show."""
    figs = {"learning_curves.png": learning_curves(rep), "intervals.png": intervals(rep),
            "effects.png": effects(rep), "importance.png": importance(rep.importance)}
    return {k: v for k, v in figs.items() if v is not None}

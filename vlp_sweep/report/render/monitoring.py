"""The Monitoring section: the plan's checklist per trial, the trials to look at first, and the time cost of
each input set; and its one line in the terminal."""

from __future__ import annotations

from vlp_sweep.report.checklist import ratio_verdict
from vlp_sweep.report.render.blocks import Block, fmt, plural
from vlp_sweep.report.types import Monitoring, Report, TrialHealth

ITEM_HEADERS = {"inputs": "inputs fed", "finite": "no NaN/inf", "train_loss": "train loss falls",
                "eval_loss": "eval loss (overfit, plateau)", "checks": "milestones", "oom": "no OOM",
                "gpu": "GPU busy"}


def _cells(t: TrialHealth) -> list[str]:
    return [t.trial_id, t.status.lower(), t.health, t.inputs, *[t.items.get(i, "-") for i in ITEM_HEADERS],
            fmt(t.samples_per_s), _gpu(t), fmt(t.micro_batch), t.flags or "-"]


def _gpu(t: TrialHealth) -> str:
    util = "-" if t.gpu_util is None else f"{t.gpu_util:.0f}%"
    return "-" if t.peak_mem_gb is None else f"{util}, {t.peak_mem_gb:.1f} GiB peak"


def _intro(m: Monitoring) -> str:
    checks = "; ".join(m.checks) or "none"
    return ("The plan's checklist, computed by the trainer as each trial trained (leaderboard.parquet's health "
            "columns): both inputs really fed (from the batches), no NaN or inf (such a trial stops at once as an "
            "error), the training loss falling, the eval loss neither rising while the training loss falls "
            "(overfitting) nor flat early (plateau), the space's milestones (" + checks + "), no out-of-memory "
            "rescue, the GPU busy. @N in the flags: the epoch where it began. Worst first.")


MAX_ROWS = 25  # trials in the table; a bigger sweep lists those that need a look first and counts the rest


def _needs_look(t: TrialHealth) -> bool:
    return t.status == "ERROR" or t.health in ("fail", "warn")


def _shown(m: Monitoring) -> tuple[list[TrialHealth], str]:
    """The table's rows and a line about those left out: every trial in a small sweep; in a big one the trials
    that errored, failed or warned (worst first, at most MAX_ROWS), and the others counted."""
    if len(m.rows) <= MAX_ROWS:
        return m.rows, ""
    look = [t for t in m.rows if _needs_look(t)]
    shown, rest = look[:MAX_ROWS], [t for t in m.rows if t not in look[:MAX_ROWS]]
    counts: dict[str, int] = {}
    for t in rest:
        word = "error" if t.status == "ERROR" else t.health
        counts[word] = counts.get(word, 0) + 1
    left = ", ".join(f"{n} {w}" for w, n in sorted(counts.items(), key=lambda c: _ORDER.get(c[0], 9)))
    what = (f"The {len(shown)} worst of the {len(look)} trials that errored, failed or warned" if len(look) > len(shown)
            else f"The {len(shown)} trials that errored, failed or warned")
    return shown, f"{what}; not listed: {plural(len(rest), 'trial')} ({left}; the leaderboard's health columns)."


_ORDER = {"error": 0, "fail": 1, "warn": 2, "pass": 3, "n/a": 4, "-": 5}


def section(rep: Report, images: set[str]) -> list[Block]:
    m = rep.monitoring
    out = [Block("h2", "Monitoring"), Block("p", _intro(m))]
    if not m.rows:
        return [*out, Block("p", m.note or "No trial has started.")]
    if all(t.health == "-" for t in m.rows):
        out.append(Block("p", "This sweep's leaderboard holds no health columns (it ran before they existed)."))
    headers = ["trial", "status", "health", "inputs", *ITEM_HEADERS.values(), "samples/s", "GPU use, memory",
               "micro-batch", "flags"]
    rows, left_out = _shown(m)
    if rows:
        out.append(Block("table", headers=headers, rows=[_cells(t) for t in rows],
                         text_cols=tuple(range(4 + len(ITEM_HEADERS))) + (len(headers) - 1,),
                         wrap_cols=(len(headers) - 1,)))
    if left_out:
        out.append(Block("p", left_out))
    out.append(Block("h3", "Look at these first"))
    if m.look_first:
        out.append(Block("list", items=[f"{t}: {why}" for t, why in m.look_first]))
    else:
        out.append(Block("p", "Every trial passes what it has been judged on."))
    out.append(Block("h3", "Time cost of each input"))
    if m.costs:
        out.append(Block("table", headers=["inputs", "trials", "s per 1000 training clips (median)"],
                         rows=[[c.label, str(c.n), fmt(c.s_per_1k)] for c in m.costs]))
    out.append(Block("p", f"{ratio_verdict(m)}." + (f" Measured as the {m.note}." if m.ratio is not None else "")
                     + " From each trial's training throughput in its last epoch (samples_per_s); trials sharing "
                       "a GPU or CPU slow each other down."))
    return out


def line(rep: Report) -> str:
    """The terminal's one line: counts, the trials to look at first, the input cost."""
    m = rep.monitoring
    counts = {s: sum(t.health == s for t in m.rows) for s in ("fail", "warn")}
    errors = sum(t.status == "ERROR" for t in m.rows)
    first = "; ".join(f"{t} ({why})" for t, why in m.look_first[:3]) or "none"
    return (f"monitoring: {counts['fail']} fail, {counts['warn']} warn, {plural(errors, 'error')}; look first: "
            f"{first}; {ratio_verdict(m)}")

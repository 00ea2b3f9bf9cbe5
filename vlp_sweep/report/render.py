"""Render a built report: one document (a list of blocks) written out as Markdown or HTML, a terminal
summary, and plain JSON. Files are written atomically (temporary file + rename), figures first and
the documents that reference them last.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlp_sweep.atomic import write_bytes
from vlp_sweep.metric_names import MODE
from vlp_sweep.report.build import CI_METRICS, TABLE_METRICS, Report, TrialLine, value_label
from vlp_sweep.report.stats import Interval

INACTIVE = " (base)"  # after a conditional key's value in a trial that did not draw it
INACTIVE_NOTE = ("(base): a conditional key (when:) the trial did not draw, as its condition failed; "
                 "it ran with the base value or trainer default")
PLOT_FILES = ("learning_curves.png", "intervals.png", "effects.png", "importance.png")


@dataclass
class Block:
    kind: str  # h1 | h2 | h3 | p | note | table | img | list
    text: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- formatting


def fmt(x: Any, metric: str = "") -> str:
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


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def _pct(level: float) -> str:
    return f"{level * 100:g}%"


# ---------------------------------------------------------------- the document


def document(rep: Report, images: set[str]) -> list[Block]:
    """The report as blocks; ``images`` are the figure files that exist."""
    out = [Block("h1", f"Sweep report: {rep.sweep}"), Block("p", _summary(rep))]
    out += [Block("note", n) for n in rep.notes]
    out += _leaderboard(rep)
    out += _comparisons(rep)
    out += _targets(rep)
    out += _intervals(rep, images)
    out += [Block("h2", "Learning curves")]
    out += [Block("img", "learning_curves.png")] if "learning_curves.png" in images else [
        Block("p", "No evaluations in history.parquet yet.")]
    out += _effects(rep, images)
    out += _importance(rep, images)
    out += _errors(rep)
    out += [Block("h2", "Where the numbers come from"), Block("list", items=rep.sources),
            Block("p", f"Intervals: percentile bootstrap over the evaluation queries, {rep.resamples} "
                       f"resamples, seeded; comparisons resample the same queries for both sides (paired) and "
                       f"give a two-sided p from the bootstrap distribution of the difference. Generated "
                       f"{rep.generated}.")]
    return out


def _summary(rep: Report) -> str:
    counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(rep.counts.items()))
    best = ""
    if rep.best:
        iv = rep.intervals.get(rep.best.trial_id, {}).get(rep.metric)
        val = fmt_ci(iv, rep.metric) if iv else fmt(rep.best.metrics.get(rep.metric), rep.metric)
        best = f" Best finished trial: {rep.best.trial_id} with {rep.metric} {val} (epoch {rep.best.best_epoch})."
    return (f"Sweep {rep.sweep} ({rep.sweep_status}), {sum(rep.counts.values())} trials: {counts}. "
            f"Metric {rep.metric} ({rep.mode}).{best}")


def trial_label(t: TrialLine, mark: str = " (baseline)") -> str:
    return t.trial_id + mark if t.baseline else t.trial_id


def _trial_cells(t: TrialLine, rep: Report, i: int) -> list[str]:
    cells = [str(i), trial_label(t), t.status.lower(), fmt(t.epochs), fmt(t.best_epoch)]
    cells += [_config_cell(t, k, value_label) for k in rep.varying]
    cells += [fmt(t.metrics.get(m), m) for m in _table_metrics(rep)]
    return cells


def _config_cell(t: TrialLine, key: str, show: Callable[[Any], str]) -> str:
    return show(t.config.get(key)) + (INACTIVE if key in t.inactive else "")


def _shows_inactive(rep: Report) -> bool:
    return any(t.inactive & set(rep.varying) for t in rep.table)


def _table_metrics(rep: Report) -> tuple[str, ...]:
    return TABLE_METRICS + ((rep.metric,) if rep.metric not in TABLE_METRICS else ())


def _leaderboard(rep: Report) -> list[Block]:
    headers = ["#", "trial", "status", "epochs", "best epoch", *rep.varying, *_table_metrics(rep)]
    rows = [_trial_cells(t, rep, i) for i, t in enumerate(rep.table, 1)]
    n = sum(v for k, v in rep.counts.items() if k != "PENDING")
    inactive = f" {INACTIVE_NOTE}." if _shows_inactive(rep) else ""
    return [Block("h2", f"Leaderboard (top {len(rep.table)}, by {rep.metric})"),
            Block("p", f"Config keys that vary across the sweep's {n} trials are shown; metrics are the "
                       f"leaderboard's best_* columns (the epoch whose checkpoint is kept).{inactive}"),
            Block("table", headers=headers, rows=rows)]


def _comparisons(rep: Report) -> list[Block]:
    headers = ["comparison", "A", "B", "metric", "A value", "B value", f"A - B [{_pct(rep.level)} CI]",
               "verdict", "method"]
    rows = []
    for c in rep.comparisons:
        r = c.result
        if r is None:
            rows.append([c.label, c.a, c.b, "-", "-", "-", "-", c.note, "-"])
            continue
        verdict = r.verdict() + (f" ({c.note})" if c.note else "")
        rows.append([c.label, c.a, c.b, r.metric, fmt(r.a, r.metric), fmt(r.b, r.metric),
                     f"{_signed(r.diff)} [{_signed(r.low)}, {_signed(r.high)}]", verdict,
                     f"{r.method}, {r.n} queries"])
    return [Block("h2", "Is the best trial really better?"), Block("table", headers=headers, rows=rows)]


def _targets(rep: Report) -> list[Block]:
    out = [Block("h2", "Baseline and targets")]
    b = rep.baseline
    if b is None:
        out.append(Block("p", "The space names no baseline."))
    else:
        src = f"from {b.source}" if b.source else "no numbers"
        out.append(Block("p", f"Baseline: {b.name} ({src})" + (f"; {b.note}." if b.note else ".")))
    levels: list[str] = []
    for row in rep.targets:
        levels += [lv for lv, _, _ in row.levels if lv not in levels]
    if not levels:
        out.append(Block("p", "The space sets no targets."))
    if not rep.targets:
        return out
    best = rep.best.trial_id if rep.best else "-"
    headers = ["metric", "baseline", f"best ({best}) [{_pct(rep.level)} CI]", *levels]
    rows = []
    for row in rep.targets:
        cells = [row.metric, fmt(row.baseline, row.metric),
                 fmt_ci(row.interval, row.metric) if row.interval else fmt(row.best, row.metric)]
        by_level = {lv: (thr, ok) for lv, thr, ok in row.levels}
        for lv in levels:
            if lv not in by_level:
                cells.append("-")
                continue
            thr, ok = by_level[lv]
            op = ">=" if MODE.get(row.metric, "max") == "max" else "<="
            cells.append(f"{op} {fmt(thr, row.metric)}: " + ("-" if ok is None else "pass" if ok else "fail"))
        rows.append(cells)
    return [*out, Block("table", headers=headers, rows=rows)]


def _intervals(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", f"Confidence intervals ({_pct(rep.level)}, bootstrap over queries)")]
    if not rep.intervals:
        return [*out, Block("p", "No per-query ranks in ranks.parquet for the listed trials.")]
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


def _effects(rep: Report, images: set[str]) -> list[Block]:
    out = [Block("h2", "Effect of each searched key"),
           Block("p", f"Finished trials grouped by the value they sampled (continuous keys: up to three bins by "
                      f"value); mean {rep.metric} with a {_pct(rep.level)} Student-t interval over the trials of "
                      "the group (a single trial has none). Other keys vary too, so these are marginal effects.")]
    if not rep.effects:
        return [*out, Block("p", "The space searches no key.")]
    for e in rep.effects:
        rows = [[r.label, str(r.n), fmt_ci(r.mean, rep.metric), fmt(r.best, rep.metric)] for r in e.rows]
        extra = f", inactive in {e.inactive} trials" if e.inactive else ""
        out.append(Block("h3", f"{e.key} ({e.kind}{', log scale' if e.log else ''}{extra})"))
        out.append(Block("table", headers=["value", "trials", f"mean {rep.metric} [CI]", "best"], rows=rows))
    if "effects.png" in images:
        out.append(Block("img", "effects.png"))
    return out


def _importance(rep: Report, images: set[str]) -> list[Block]:
    imp = rep.importance
    out = [Block("h2", "Parameter importance")]
    if not imp.values:
        return [*out, Block("p", f"Not computed: {imp.note}.")]
    out.append(Block("p", f"{imp.method}, from {imp.n_trials} finished trials, for {rep.metric}."
                          + (f" Note: {imp.note}." if imp.note else "")))
    out.append(Block("table", headers=["key", "importance"], rows=[[k, f"{v:.3f}"] for k, v in imp.values.items()]))
    if "importance.png" in images:
        out.append(Block("img", "importance.png"))
    return out


def _errors(rep: Report) -> list[Block]:
    out = [Block("h2", f"Errored trials ({len(rep.errors)})")]
    if not rep.errors:
        return [*out, Block("p", "None.")]
    return [*out, Block("table", headers=["trial", "error"], rows=[[t, e] for t, e in rep.errors])]


# ---------------------------------------------------------------- Markdown and HTML


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "note":
            lines += [f"> **Note:** {b.text}", ""]
        elif b.kind == "list":
            lines += [f"- {i}" for i in b.items] + [""]
        elif b.kind == "img":
            lines += [f"![{b.text.removesuffix('.png').replace('_', ' ')}]({b.text})", ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(_md_cell(h) for h in b.headers) + " |")
            lines.append("|" + "|".join("---" for _ in b.headers) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in b.rows]
            lines.append("")
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td:nth-child(2),th:nth-child(2){text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
"""


def to_html(blocks: list[Block], images: dict[str, bytes], title: str) -> str:
    """Self-contained HTML: inline CSS, figures as data: URIs, no script and no external URL."""
    e = html.escape
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "note":
            body.append(f'<p class="note"><b>Note:</b> {e(b.text)}</p>')
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "img" and b.text in images:
            data = base64.b64encode(images[b.text]).decode("ascii")
            alt = e(b.text.removesuffix(".png").replace("_", " "))
            body.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{e(title)}</title>"
            f"<link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


# ---------------------------------------------------------------- JSON


def _plain(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (set, frozenset)):
        return sorted(_plain(v) for v in x)
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _plain(x.item())
    return x


def to_dict(rep: Report) -> dict[str, Any]:
    d = asdict(rep)
    for c, src in zip(d["comparisons"], rep.comparisons):
        c["verdict"] = src.result.verdict() if src.result else None
    return dict(_plain(d))


def to_json(rep: Report) -> str:
    return json.dumps(to_dict(rep), indent=1)


# ---------------------------------------------------------------- files


def write_report(rep: Report, out_dir: Path) -> dict[str, Path]:
    """Write figures, report.md and report.html into ``out_dir``; returns name -> path."""
    from vlp_sweep.report.plots import all_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    images = all_plots(rep)
    for name, data in images.items():
        write_bytes(out_dir / name, data)
    blocks = document(rep, set(images))
    write_bytes(out_dir / "report.md", to_markdown(blocks).encode())
    write_bytes(out_dir / "report.html", to_html(blocks, images, f"Sweep report: {rep.sweep}").encode())
    for stale in set(PLOT_FILES) - set(images):  # a figure this report no longer has
        (out_dir / stale).unlink(missing_ok=True)
    return {"report.md": out_dir / "report.md", "report.html": out_dir / "report.html",
            **{k: out_dir / k for k in images}}


# ---------------------------------------------------------------- terminal


def print_terminal(rep: Report, written: dict[str, Path] | None = None) -> None:
    from rich.console import Console

    table = _terminal_table(rep)
    # As wide as the table needs (up to 220 columns), so that headers and values are never folded;
    # a narrower terminal wraps the lines instead.
    probe = Console(width=220)
    natural = probe.measure(table).maximum
    console = Console(width=max(Console().width, min(220, natural)), highlight=False)
    console.print(_summary(rep), markup=False)
    for n in rep.notes:
        console.print(f"note: {n}", markup=False)
    console.print(table)
    if any(t.baseline for t in rep.table):
        console.print("* the baseline trial (baseline.run): the baseline's config, not a searched one", markup=False)
    if _shows_inactive(rep):
        console.print(INACTIVE_NOTE, markup=False)
    for line in summary_lines(rep):
        console.print(line, markup=False)
    for name, path in (written or {}).items():
        if name.startswith("report."):
            console.print(f"wrote {path}", markup=False)


TERMINAL_METRICS = {"t2v_R1": "t2v R@1", "t2v_R5": "R@5", "t2v_R10": "R@10", "t2v_MedR": "MedR",
                    "v2t_R1": "v2t R@1"}
STATUS_WORDS = {"TERMINATED": "done", "STOPPED": "stopped", "RUNNING": "running", "ERROR": "error"}


def _short_keys(keys: list[str]) -> dict[str, str]:
    """``loss.hard_negatives`` -> ``hard_negatives`` where the field name alone is unambiguous."""
    fields = [k.split(".", 1)[-1] for k in keys]
    return {k: f if fields.count(f) == 1 else k for k, f in zip(keys, fields)}


def _short_value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else value_label(v)


def _terminal_table(rep: Report) -> Any:
    from rich.table import Table

    metrics = list(TERMINAL_METRICS) + ([rep.metric] if rep.metric not in TERMINAL_METRICS else [])
    short = _short_keys(rep.varying)
    table = Table(show_lines=False, pad_edge=False)
    for col in ["#", "trial", "status", "ep", *short.values(), *[TERMINAL_METRICS.get(m, m) for m in metrics],
                f"{_pct(rep.level)} CI"]:
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for i, t in enumerate(rep.table, 1):
        iv = rep.intervals.get(t.trial_id, {}).get(rep.metric)
        table.add_row(str(i), trial_label(t, "*"), STATUS_WORDS.get(t.status, t.status.lower()), fmt(t.best_epoch),
                      *[_config_cell(t, k, _short_value) for k in rep.varying],
                      *[fmt(t.metrics.get(m), m) for m in metrics],
                      f"{fmt(iv.low, rep.metric)}-{fmt(iv.high, rep.metric)}" if iv else "-")
    return table


def summary_lines(rep: Report) -> list[str]:
    out = []
    for c in rep.comparisons:
        r = c.result
        if r is None:
            out.append(f"{c.label}: {c.note}")
            continue
        out.append(f"{c.label} ({c.a} vs {c.b}): {r.metric} {_signed(r.diff)} [{_signed(r.low)}, "
                   f"{_signed(r.high)}]: {r.verdict()}" + (f" ({c.note})" if c.note else ""))
    for row in rep.targets:
        for lv, thr, ok in row.levels:
            state = "-" if ok is None else "pass" if ok else "fail"
            out.append(f"target {lv}: {row.metric} {fmt(row.best, row.metric)} vs {fmt(thr, row.metric)}: {state}")
    imp = rep.importance
    if imp.values:
        out.append("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in list(imp.values.items())[:5]))
    else:
        out.append(f"importance: {imp.note}")
    for tid, err in rep.errors:
        out.append(f"ERROR {tid}: {err}")
    return out

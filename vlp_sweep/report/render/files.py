"""Write a report's files: the figures, then report.md and report.html that reference them (each file
atomically, so a reader never sees half of one)."""

from __future__ import annotations

from pathlib import Path

from vlp_sweep.atomic import write_bytes
from vlp_sweep.report.render.document import document
from vlp_sweep.report.render.html import to_html
from vlp_sweep.report.render.markdown import to_markdown
from vlp_sweep.report.types import Report

PLOT_FILES = ("learning_curves.png", "intervals.png", "effects.png", "importance.png", "expected_best.png")


def write_report(rep: Report, out_dir: Path) -> dict[str, Path]:
    """Write figures, report.md and report.html into ``out_dir``; returns name -> path."""
    from vlp_sweep.report.render.plots import all_plots

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

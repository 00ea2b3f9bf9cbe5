"""Outputs of a built report, one module each:

    blocks.py     the document's blocks and the number formats every output shares
    document.py   the document: its sections in order (trials, intervals, curves, errors, sources)
    verdicts.py   sections that judge: comparisons, baseline and targets
    analyses.py   sections of the equal-budget analyses: effects, importance, would more trials help
    monitoring.py the Monitoring section: the plan's checklist per trial, what to look at first, input cost
    confirmation.py the headline section: the confirmation stage on the held-out split
    markdown.py   the document as Markdown
    html.py       the document as self-contained HTML
    terminal.py   the terminal summary (a rich table and one line per verdict)
    as_json.py    the report as plain JSON
    plots.py      the figures (matplotlib, Agg) as PNG bytes
    files.py      write the figures, report.md and report.html
"""

from __future__ import annotations

from vlp_sweep.report.render.as_json import to_dict, to_json
from vlp_sweep.report.render.document import document
from vlp_sweep.report.render.files import write_report
from vlp_sweep.report.render.markdown import to_markdown
from vlp_sweep.report.render.terminal import print_terminal

__all__ = ["document", "print_terminal", "to_dict", "to_json", "to_markdown", "write_report"]

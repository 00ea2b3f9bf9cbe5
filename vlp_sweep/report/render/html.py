"""The document as one self-contained HTML page: inline CSS, figures as data: URIs, no script, no URL.

Wide tables stay readable in a browser: each table sits in a box that scrolls sideways inside the page
(never past its edge) and a wide one keeps its trial column in view; headers wrap (after the dots and
underscores of config keys too); prose columns (verdicts, methods, errors) wrap in a bounded width
instead of widening the table.
"""

from __future__ import annotations

import base64
import html

from vlp_sweep.report.render.blocks import Block

WIDE = 12  # columns from which a table keeps its identifying column in view while it scrolls

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1200px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
.scroll{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:right;white-space:nowrap;vertical-align:top}
th{background:#f4f4f4;white-space:normal;min-width:3.5em}
.text{text-align:left}
.prose{white-space:normal;text-align:left;min-width:12em;max-width:30em}
.wide td:nth-child(2){position:sticky;left:0;background:#fff}
.wide th:nth-child(2){position:sticky;left:0}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em .8em}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
"""


def _breakable(text: str) -> str:
    """Escaped header text that may wrap after '.' and '_' (``optim.warmup_steps``) as well as at spaces."""
    return html.escape(text).replace(".", ".<wbr>").replace("_", "_<wbr>")


def _classes(b: Block) -> list[str]:
    """Per column: ' class="prose"' (wraps), ' class="text"' (left-aligned words) or '' (numbers)."""
    return [' class="prose"' if i in b.wrap_cols else ' class="text"' if i in b.text_cols else ""
            for i in range(len(b.headers))]


def _table(b: Block) -> str:
    cls = _classes(b)
    head = "".join(f"<th{c}>{_breakable(h)}</th>" for c, h in zip(cls, b.headers))
    rows = "".join("<tr>" + "".join(f"<td{c}>{html.escape(v)}</td>" for c, v in zip(cls, r)) + "</tr>"
                   for r in b.rows)
    wide = ' class="wide"' if len(b.headers) >= WIDE else ""
    return f'<div class="scroll"><table{wide}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _block(b: Block, images: dict[str, bytes]) -> str:
    e = html.escape
    if b.kind in ("h1", "h2", "h3"):
        return f"<{b.kind}>{e(b.text)}</{b.kind}>"
    if b.kind == "p":
        return f"<p>{e(b.text)}</p>"
    if b.kind == "note":
        return f'<p class="note"><b>Note:</b> {e(b.text)}</p>'
    if b.kind == "list":
        return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.items) + "</ul>"
    if b.kind == "img" and b.text in images:
        data = base64.b64encode(images[b.text]).decode("ascii")
        return f'<img alt="{e(b.text.removesuffix(".png").replace("_", " "))}" src="data:image/png;base64,{data}">'
    if b.kind == "table":
        return _table(b)
    return ""


def to_html(blocks: list[Block], images: dict[str, bytes], title: str) -> str:
    """Self-contained HTML: inline CSS, figures as data: URIs, no script and no external URL."""
    body = [s for s in (_block(b, images) for b in blocks) if s]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}"
            f"</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")

"""The document as Markdown (GitHub tables; figures referenced as PNG files beside it)."""

from __future__ import annotations

from vlp_sweep.report.render.blocks import Block


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _table(b: Block) -> list[str]:
    rule = "|" + "|".join(":---" if i in (*b.text_cols, *b.wrap_cols) else "---:" for i in range(len(b.headers)))
    lines = ["| " + " | ".join(_cell(h) for h in b.headers) + " |", rule + "|"]
    return [*lines, *("| " + " | ".join(_cell(c) for c in r) + " |" for r in b.rows), ""]


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
            lines += _table(b)
    return "\n".join(lines)

"""Caption tables: a plain CSV, the Phoenix-2014T corpus CSV, the project's corpus table (name, split,
n_frames, gloss, text) and the How2Sign CSV, read into one frame.

Every reader returns a DataFrame with columns ``id, split, text`` (strings) and, where the
source has them, ``gloss`` and ``signer``. The clip id is what a pose file's stem is matched
against: plain ``id``, Phoenix ``name``, How2Sign ``SENTENCE_NAME``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from vlp_sweep.errors import UserError

FORMATS = ("auto", "plain", "phoenix", "corpus", "how2sign")
SPLIT_WORDS = ("train", "dev", "val", "validation", "test")


@dataclass(frozen=True)
class CaptionLayout:
    """Which source column becomes which manifest column; ``split`` None = the split comes from outside."""

    name: str
    required: tuple[str, ...]
    id: str
    text: str
    split: str | None = None
    gloss: str | None = None
    signer: str | None = None


LAYOUTS = {
    "plain": CaptionLayout("plain", ("id", "split", "text"), "id", "text", split="split", gloss="gloss",
                           signer="signer"),
    "phoenix": CaptionLayout("phoenix", ("name", "video", "start", "end", "speaker", "orth", "translation"),
                             "name", "translation", gloss="orth", signer="speaker"),
    # The project's corpus table (../shared/data/phoenix14t/corpus.csv): one file, every split.
    "corpus": CaptionLayout("corpus", ("name", "split", "n_frames", "gloss", "text"), "name", "text", split="split",
                            gloss="gloss"),
    "how2sign": CaptionLayout("how2sign", ("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME",
                                           "START_REALIGNED", "END_REALIGNED", "SENTENCE"),
                              "SENTENCE_NAME", "SENTENCE"),
}
# Phoenix uses '|'; the released How2Sign files are tab-separated although named .csv; plain is CSV.
SEPARATORS = ("|", "\t", ",")


def _header_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.readline().rstrip("\r\n")
    except FileNotFoundError:
        raise UserError(f"captions file not found: {path}") from None
    except (UnicodeDecodeError, IsADirectoryError) as e:
        raise UserError(f"{path}: not a UTF-8 text file ({type(e).__name__})") from None


def detect_layout(path: Path, fmt: str = "auto") -> tuple[CaptionLayout, str]:
    """The caption layout and column separator of ``path``; ``fmt`` names the layout or 'auto'."""
    if fmt not in FORMATS:
        raise UserError(f"--captions-format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    header = _header_line(path)
    candidates = list(LAYOUTS.values()) if fmt == "auto" else [LAYOUTS[fmt]]
    for layout in candidates:
        for sep in SEPARATORS:
            columns = {c.strip() for c in header.split(sep)}
            if set(layout.required) <= columns:
                return layout, sep
    wanted = "; ".join(f"{n}: {_describe(lay)}" for n, lay in LAYOUTS.items() if fmt in ("auto", n))
    raise UserError(f"{path}: header {header[:80]!r} matches none of the caption layouts ({wanted})")


def _describe(layout: CaptionLayout) -> str:
    return ("|" if layout.name == "phoenix" else ",").join(layout.required)


def split_from_name(path: Path) -> str | None:
    """A split word in the file name, e.g. 'dev' in PHOENIX-2014-T.dev.corpus.csv; None if there is none."""
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", path.name)]
    found = [w for w in words if w in SPLIT_WORDS]
    return found[-1] if found else None


def _read_table(path: Path, sep: str) -> pd.DataFrame:
    # '|' and tab never occur inside Phoenix / How2Sign sentences, while quote characters do, unescaped:
    # read those without quote handling, then undo CSV quoting only where a whole field is quoted.
    quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=quoting,
                         encoding="utf-8-sig")
    except (pd.errors.ParserError, ValueError) as e:
        raise UserError(f"{path}: not a readable captions table ({str(e).splitlines()[0]})") from None
    df = df.fillna("")  # short rows leave NaN even with keep_default_na off
    if quoting == csv.QUOTE_NONE:
        df = df.rename(columns=_unquote).map(_unquote)
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _unquote(field: str) -> str:
    """A whole field in CSV quotes loses them (doubled quotes inside become one); anything else stays."""
    inner = field[1:-1]
    if len(field) >= 2 and field[0] == field[-1] == '"' and '"' not in inner.replace('""', ""):
        return inner.replace('""', '"')
    return field


def read_captions(path: str | Path, fmt: str = "auto", split: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read one captions file; returns (frame with id, split, text[, gloss, signer], layout name).

    ``split`` sets the split of layouts without a split column (Phoenix, How2Sign); without it the
    split is taken from the file name. A plain CSV's own split column always wins.
    """
    path = Path(path)
    layout, sep = detect_layout(path, fmt)
    df = _read_table(path, sep)
    out = pd.DataFrame({"id": df[layout.id].str.strip(), "text": df[layout.text].str.strip()})
    if layout.split is not None:
        out["split"] = df[layout.split].str.strip()
    else:
        named = split or split_from_name(path)
        if named is None:
            raise UserError(f"{path}: {layout.name} captions carry no split and the file name names none "
                            f"({'/'.join(SPLIT_WORDS)}): pass --split")
        out["split"] = named
    for col in ("gloss", "signer"):
        src = getattr(layout, col)
        if src is not None and src in df.columns:
            out[col] = df[src].str.strip()
    for col, src in (("id", layout.id), ("split", layout.split)):
        empty = (out[col] == "").to_numpy()
        if empty.any():  # an id or split is structure, not content: a broken table, not a clip to skip
            raise UserError(f"{path}: line {int(empty.argmax()) + 2} has an empty {src}")
    return out[[c for c in ("id", "split", "text", "gloss", "signer") if c in out.columns]], layout.name

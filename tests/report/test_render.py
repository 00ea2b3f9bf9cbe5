"""Renderers and the choices behind the figures: HTML table markup, Markdown alignment, the loss plotted in the
learning curves."""

from __future__ import annotations

import json

import pandas as pd

from vlp_sweep.report.render.blocks import Block
from vlp_sweep.report.render.html import WIDE, to_html
from vlp_sweep.report.render.markdown import to_markdown
from vlp_sweep.report.trials import curve_loss


def _rows(*modes: str) -> pd.DataFrame:
    return pd.DataFrame({"trial_id": [f"t{i}" for i in range(len(modes))],
                         "config_json": [json.dumps({"loss.hard_negatives": m}) for m in modes]})


def test_the_loss_curve_is_plain_infonce_where_hard_negative_modes_differ() -> None:
    with_infonce = pd.DataFrame({"trial_id": ["t0", "t1"], "eval_loss": [4.0, 9.0], "eval_infonce": [4.0, 4.5]})
    older = with_infonce.drop(columns="eval_infonce")
    column, title = curve_loss(with_infonce, _rows("none", "hcl"))
    assert column == "eval_infonce" and "comparable across hard-negative modes" in title
    column, title = curve_loss(older, _rows("none", "hcl"))  # a sweep from before eval_infonce
    assert column == "eval_loss" and "not comparable" in title and "no eval_infonce" in title
    assert curve_loss(with_infonce, _rows("hcl", "hcl")) == ("eval_loss", "eval loss")  # one mode: its own loss


def test_html_tables_scroll_in_a_box_wrap_prose_and_break_long_headers() -> None:
    narrow = Block("table", headers=["comparison", "verdict"], rows=[["a vs b", "not distinguishable (p = 0.4)"]],
                   wrap_cols=(1,))
    wide = Block("table", headers=["#", "trial", *[f"optim.key_{i}" for i in range(WIDE)]],
                 rows=[["1", "t0", *["0.1"] * WIDE]], text_cols=(1,))
    page = to_html([narrow, wide], {}, "t")
    assert page.count('<div class="scroll"><table') == 2 and page.count('<table class="wide">') == 1
    assert '<td class="prose">not distinguishable (p = 0.4)</td>' in page and '<td class="text">a vs b</td>' in page
    assert "<th>optim.<wbr>key_<wbr>0</th>" in page  # a config key may wrap after its dot and underscore
    assert '<td class="text">t0</td>' in page and "<td>0.1</td>" in page


def test_markdown_aligns_words_left_and_numbers_right() -> None:
    md = to_markdown([Block("table", headers=["key", "importance"], rows=[["optim.lr", "0.5"]])])
    assert md.splitlines()[1] == "|:---|---:|"

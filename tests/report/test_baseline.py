"""Selection numbers at equal footing (report/baseline.py): the best trial against the runner-up at the last
epoch both reached, not at their own best epochs; against the baseline labelled double-selected; neither a
verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vlp_sweep.report.baseline import comparisons, last_common_epoch
from vlp_sweep.report.render.blocks import selection_label, selection_p
from vlp_sweep.report.types import Baseline

N = 60


def _index(trials: dict[str, dict[int, float]]) -> dict[tuple[str, int, str], np.ndarray]:
    """Ranks per (trial, epoch): the first share of queries hit at rank 1, the rest at rank 9."""
    out = {}
    for tid, epochs in trials.items():
        for e, hits in epochs.items():
            r = np.where(np.arange(N) < hits * N, 1, 9)
            out[(tid, e, "t2v")] = out[(tid, e, "v2t")] = r
    return out


def _board(rows: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame({"trial_id": [t for t, _ in rows], "best_epoch": [e for _, e in rows]})


def _history(index: dict[tuple[str, int, str], np.ndarray]) -> pd.DataFrame:
    keys = sorted({(t, e) for t, e, _ in index})
    return pd.DataFrame({"trial_id": [t for t, _ in keys], "epoch": [e for _, e in keys]})


def test_the_runner_up_is_compared_at_the_last_epoch_both_reached() -> None:
    # best ran 6 epochs (best at 6), the runner-up was stopped at 4 (its best): at epoch 4 they are equal
    index = _index({"best": {2: 0.1, 4: 0.3, 6: 0.5}, "ru": {2: 0.2, 4: 0.3}, "base": {2: 0.0, 4: 0.05, 6: 0.1}})
    history = _history(index)
    assert last_common_epoch(index, history, "best", "ru") == 4
    assert last_common_epoch(index, history, "best", "nobody") is None and last_common_epoch(index, None, "best",
                                                                                             "ru") is None
    board = _board([("best", 6), ("ru", 4)])
    base_row = pd.Series({"trial_id": "base", "best_epoch": 6})
    out = comparisons(board, base_row, Baseline("plan", "trial base", "base"), index, "t2v_R1", 200, 0, history)
    ru, vs = out
    assert ru.epoch == 4 and ru.result is not None and ru.result.diff == 0  # not +20 (epoch 6 vs epoch 4)
    assert selection_label(ru) == "best vs runner-up at epoch 4 (the last both reached)"
    assert vs.double_selected and vs.epoch is None and vs.result is not None and vs.result.diff > 0
    assert "double-selected" in selection_label(vs) and selection_p(vs).endswith(", no verdict")


def test_no_runner_up_comparison_without_a_common_epoch() -> None:
    index = _index({"best": {6: 0.5}, "ru": {4: 0.3}})
    out = comparisons(_board([("best", 6), ("ru", 4)]), None, None, index, "t2v_R1", 200, 0, _history(index))
    assert out == []

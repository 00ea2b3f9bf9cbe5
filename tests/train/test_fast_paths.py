"""A fast path changes speed, not results: the same seed trains the same model (to float tolerance) with the
variable-length attention kernel or padded attention, compiled or eager; with dropout on and clips of many
lengths. Needs a GPU (the fast paths run only there); on the CPU the fallback itself is checked."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from tests.train.conftest import tiny_config
from vlp_sweep.train import trainer as T

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
OVER = {"model.dropout": 0.2, "aug.frame_mask_prob": 0.1, "aug.speed": 0.2, "optim.epochs": 3,
        "optim.batch_size": 4, "optim.grad_accum": 2}


def _run(data: Path, **over: object) -> dict[str, float]:
    return T.fit(tiny_config(data, **OVER, **over)).last.metrics


@CUDA
@pytest.mark.parametrize("other", [{"run.attention": "padded"}, {"run.compile": True}])
def test_a_fast_path_on_or_off_trains_the_same_model(tiny_data: Path, other: dict[str, object],
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    fast = _run(tiny_data, **{"run.device": "cuda", "run.attention": "varlen"})
    slow = _run(tiny_data, **{"run.device": "cuda", **other})
    for key in ("loss", "eval_loss", "eval_infonce"):
        assert fast[key] == pytest.approx(slow[key], rel=2e-2), key


def test_on_the_cpu_the_fast_paths_fall_back_with_one_line_and_the_same_numbers(
        tiny_data: Path, caplog: pytest.LogCaptureFixture) -> None:
    plain = _run(tiny_data, **{"run.device": "cpu", "run.attention": "padded"})
    with caplog.at_level(logging.WARNING):
        asked = _run(tiny_data, **{"run.device": "cpu", "run.attention": "varlen", "run.compile": True})
    lines = [r.getMessage() for r in caplog.records]
    assert sum("run.attention=varlen" in m and "falling back to padded attention" in m for m in lines) == 1
    assert sum(m.startswith("run.compile: eager on the cpu") for m in lines) == 1
    assert {k: v for k, v in asked.items() if not k.endswith("_s")} == \
        {k: v for k, v in plain.items() if not k.endswith("_s")}  # the fallback is the same computation

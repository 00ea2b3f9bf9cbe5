"""The health checklist: trend detectors against hand-worked sequences, the input probe, and the trainer
stopping at once on a NaN."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tests.train.conftest import tiny_config
from vlp_sweep.train import trainer as T
from vlp_sweep.train.model import VLPModel
from vlp_sweep.train.watch import health as H
from vlp_sweep.train.watch.health_config import Check, HealthConfig

EP = list(range(1, 11))


def test_stall_found_where_the_loss_stops_falling() -> None:
    falling = [5.0 - 0.3 * i for i in range(10)]
    assert H.stall_start(EP, falling, window=3, min_decrease=0.01) is None
    # falls until epoch 5 (index 4), then stays: the first window with < 1% fall starts at epoch 5
    stuck = falling[:5] + [falling[4]] * 5
    assert H.stall_start(EP, stuck, window=3, min_decrease=0.01) == 5
    # 0.5% per window is a stall at 1%, not at 0.1%
    slow = [4.0 * (1 - 0.005 / 3) ** i for i in range(10)]
    assert H.stall_start(EP, slow, window=3, min_decrease=0.01) == 1
    assert H.stall_start(EP, slow, window=3, min_decrease=0.001) is None
    assert H.stall_start(EP[:3], stuck[:3], window=3, min_decrease=0.01) is None  # too few evaluations


def test_plateau_and_its_start() -> None:
    ev = [6.0, 5.0, 4.0, 3.5, 3.5, 3.51, 3.49, 3.5, 3.5, 3.5]
    assert H.plateau_start(EP, ev, window=3, tol=0.01) == 4
    assert H.plateau_start(EP, ev, window=3, tol=0.001) is None  # 3.49..3.51 is a 0.6% band
    assert H.plateau_start(EP, [6.0 - 0.5 * i for i in range(10)], window=3, tol=0.01) is None


def test_overfit_needs_eval_up_and_train_down() -> None:
    train = [5.0 - 0.4 * i for i in range(10)]
    ev = [5.0, 4.0, 3.0, 2.8, 2.9, 3.0, 3.1, 3.2, 3.3, 3.4]
    assert H.overfit_start(EP, train, ev, rise=0.02) == 4  # minimum at epoch 4
    assert H.overfit_start(EP, train, ev, rise=0.5) is None  # 3.4 is 21% above 2.8
    flat_train = [2.0] * 10  # eval up but training not falling: not overfitting
    assert H.overfit_start(EP, flat_train, ev, rise=0.02) is None


def test_milestone_check() -> None:
    c = Check("eval_loss", below=3.0, by_epoch=4)
    assert H.check_status(c, [1, 2], [5.0, 4.0]) == "n/a"  # not reached
    assert H.check_status(c, [1, 2, 3, 4], [5.0, 4.0, 3.5, 3.2]) == "fail"
    assert H.check_status(c, [1, 2, 3, 4, 5], [5.0, 4.0, 2.9, 3.2, 2.0]) == "pass"  # held at epoch 3
    assert H.check_status(c, [2, 6], [4.0, 2.0]) == "fail"  # 2.0 came after epoch 4
    assert H.check_status(Check("t2v_R1", above=10, by_epoch=1), [1], [12.0]) == "pass"


def test_inputs_fed_and_all_zero_input() -> None:
    probe = H.FedInputs()
    probe.observe({"kpts": torch.randn(4, 16, 30), "siglip": torch.zeros(4, 16, 8), "tokens": torch.zeros(4, 3)})
    fed = probe.summary()
    assert fed == {"kpts": (30, True), "siglip": (8, False)}
    status, flags = H.inputs_status({"kpts": True, "siglip": True}, fed)
    assert (status, flags) == ("fail", ["siglip all zeros"])
    assert H.inputs_status({"kpts": True, "siglip": False}, {"kpts": (30, True)}) == ("pass", [])
    assert H.inputs_status({"kpts": True, "siglip": True}, {"kpts": (30, True)})[1] == ["siglip not fed"]


def test_columns_are_complete_and_worst_wins() -> None:
    hist = [(e, {"loss": 4.0, "eval_loss": 4.0}) for e in range(1, 8)]
    cols = H.health_columns(HealthConfig(window=3, checks=(Check("eval_loss", below=3.0, by_epoch=5),)), hist,
                            {"kpts": True, "siglip": False}, {"kpts": (30, True)}, 20, {"gpu_util": 50.0},
                            64, ["epoch 1 step 2: micro-batch 128 -> 64"])
    assert set(cols) == set(H.COLUMNS)
    assert cols["health_train_loss"] == "warn" and cols["stall_epoch"] == 1
    assert cols["health_eval_loss"] == "warn" and cols["plateau_epoch"] == 1  # 1 <= 0.5 * 20: early
    assert cols["health_checks"] == "fail" and cols["health_gpu"] == "warn" and cols["health_oom"] == "warn"
    assert cols["health"] == "fail"
    assert cols["health_flags"] == ("stall@1, plateau@1, missed eval_loss < 3 by epoch 5, oom x1, gpu 50%")
    late = H.health_columns(HealthConfig(window=3, plateau_early=0.01), hist, {"kpts": True}, {"kpts": (30, True)},
                            20, {"gpu_util": None}, 64, [])
    assert late["health_eval_loss"] == "pass" and late["plateau_epoch"] == 1  # converged late: no warning
    assert late["health_gpu"] == "n/a"


def test_fit_reports_what_the_batches_carry(tiny_data: Path) -> None:
    res = T.fit(tiny_config(tiny_data, **{"optim.epochs": 1}))
    h = res.last.health
    assert h["fed_kpts_dim"] > 0 and h["fed_siglip_dim"] == 8 and h["health_inputs"] == "pass"
    assert h["micro_batch"] == 8 and h["health_finite"] == "pass"
    res = T.fit(tiny_config(tiny_data, **{"optim.epochs": 1, "data.use_siglip": False}))
    assert res.last.health["fed_siglip_dim"] == 0 and res.last.health["health_inputs"] == "pass"


def test_nan_stops_the_run_at_once(tiny_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    forward = VLPModel.forward

    def poisoned(self: VLPModel, *args: object, **kw: object) -> dict[str, torch.Tensor]:
        out = forward(self, *args, **kw)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] == 5:  # 3 steps per epoch + 1 evaluation forward: the first step of epoch 2
            out = dict(out, video=out["video"] * math.nan)
        return out

    monkeypatch.setattr(VLPModel, "forward", poisoned)
    seen: list[T.Evaluation] = []
    with pytest.raises(H.NonFiniteError, match=r"non-finite training loss nan .* epoch 2, step 4: .*lower optim.lr"):
        T.fit(tiny_config(tiny_data, **{"optim.epochs": 3}), seen.append)
    assert calls["n"] == 5  # nothing ran after the poisoned step
    assert len(seen) == 1


def test_train_command_reports_a_nan_in_one_line(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.cli import main

    forward = VLPModel.forward
    monkeypatch.setattr(VLPModel, "forward", lambda self, *a, **kw: {
        **(out := forward(self, *a, **kw)), "video": out["video"] * math.inf})  # type: ignore[arg-type]
    sets = [f"{k}={v}" for k, v in tiny_config(tiny_data, **{"optim.epochs": 1}).items()]
    assert main(["train", *[x for s in sets for x in ("--set", s)], "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite training loss" in err[0] and "epoch 1, step 1" in err[0]
    # the first step comes before any update: the advice is not the learning rate
    assert "before any update, so the model's output or the data is not finite" in err[0]
    assert "lower optim.lr" not in err[0]

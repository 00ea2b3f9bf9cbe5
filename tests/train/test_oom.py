"""Out-of-memory rescue: the GPU's OutOfMemoryError injected at a chosen micro-batch size on the CPU; the
rescued run matches one started at the smaller micro-batch, and gives up in one line below the floor."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.conftest import tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import state as S
from vlp_sweep.train import steps
from vlp_sweep.train import trainer as T
from vlp_sweep.train.checkpoint import load_checkpoint
from vlp_sweep.train.inputs.packing import PackedBatch
from vlp_sweep.train.model import VLPModel
from vlp_sweep.train.watch.health_config import HealthConfig
from vlp_sweep.train.watch.oom import OomRescue, OutOfMemoryFloorError, split_batch


def _oom_above(monkeypatch: pytest.MonkeyPatch, limit: int) -> dict[str, int]:
    """Training forwards of more than ``limit`` clips raise what CUDA raises when memory runs out."""
    forward, seen = VLPModel.forward, {"oom": 0}

    def guarded(self: VLPModel, b: PackedBatch, *args: object, **kw: object) -> dict[str, torch.Tensor]:
        if self.training and len(b) > limit:
            seen["oom"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return forward(self, b, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(VLPModel, "forward", guarded)
    return seen


def _fit(data: Path, out: Path, **over: object) -> tuple[T.FitResult, dict[str, torch.Tensor]]:
    cfg = tiny_config(data, **{"model.dropout": 0.1, "optim.epochs": 2, "run.out_dir": str(out), **over})
    res = T.fit(cfg)
    return res, load_checkpoint(out / "last.pt")["model"]


def _metrics(res: T.FitResult) -> list[dict[str, float]]:
    return [{k: v for k, v in ev.metrics.items() if not k.endswith("_s")} for ev in res.history]  # not times


def test_split_batch_keeps_every_clip_in_order() -> None:
    b = {"tokens": torch.arange(7)[:, None], "kpts": torch.arange(14.0).reshape(7, 2)}
    parts = split_batch(b, 2)
    assert [len(p["tokens"]) for p in parts] == [4, 3]
    assert torch.equal(torch.cat([p["kpts"] for p in parts]), b["kpts"])


def test_rescued_run_matches_one_started_at_the_smaller_micro_batch(tiny_data: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole step of 16 clips at once runs out of memory in both runs, with its layers recomputed too: the
    # small one goes on with GradCache over its micro-batches of 4, the big one over its micro-batches of 8,
    # which run out too and are cut to 4.
    seen = _oom_above(monkeypatch, 4)
    small, small_w = _fit(tiny_data, tmp_path / "small", **{"optim.batch_size": 4, "optim.grad_accum": 4})
    assert seen["oom"] == 2  # the whole step, recomputed or not; then never again: the fallback stays
    big, big_w = _fit(tiny_data, tmp_path / "big", **{"optim.batch_size": 8, "optim.grad_accum": 2})
    assert seen["oom"] == 2 + 3  # the whole step twice, then micro-batches of 8
    assert _metrics(big) == _metrics(small)  # every loss and metric of every epoch, bit for bit
    assert all(torch.equal(big_w[k], small_w[k]) for k in small_w)
    h = big.last.health
    assert (h["micro_batch"], h["oom_rescues"], h["health_oom"]) == (4, 3, "warn")
    assert small.last.health["micro_batch"] == 4 and small.last.health["oom_rescues"] == 2


def test_naive_accumulation_keeps_its_negatives(tiny_data: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # no dropout: the rescued step draws dropout masks per chunk of 4, not per micro-batch of 8 (same law,
    # other draws), so only without dropout can the two runs be compared number for number
    naive = {"optim.accum_mode": "naive", "optim.grad_accum": 2, "optim.batch_size": 8, "model.dropout": 0.0}
    plain, plain_w = _fit(tiny_data, tmp_path / "plain", **naive)
    smaller, _ = _fit(tiny_data, tmp_path / "smaller", **{**naive, "optim.batch_size": 4, "optim.grad_accum": 4})
    _oom_above(monkeypatch, 4)
    rescued, rescued_w = _fit(tiny_data, tmp_path / "rescued", **naive)
    # the same experiment as without the error (each micro-batch of 8 still sees its own 7 negatives) ...
    for a, b in zip(_metrics(rescued), _metrics(plain)):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-4)
    # Adam's first steps move each weight by about lr * sign(grad): float noise in near-zero gradients shows
    # at 1e-5..1e-4 after two steps (the step's gradients themselves: test_split_step_gradients_...)
    worst = max(float((rescued_w[k] - plain_w[k]).abs().max()) for k in plain_w)
    assert worst < 2e-4, worst
    # ... not naive accumulation over micro-batches of 4, which would have fewer negatives
    assert _metrics(smaller)[-1]["loss"] != pytest.approx(_metrics(plain)[-1]["loss"], rel=1e-3)


@pytest.mark.parametrize("mode", ["naive", "cached"])
def test_split_step_gradients_equal_the_unsplit_step(tiny_data: Path, mode: str) -> None:
    """One step's gradients with its layers recomputed (the first retry), over its micro-batches (the next) and
    with them cut in two equal those of the step itself (all its clips in one forward)."""
    cfg = make_config(tiny_config(tiny_data, **{"optim.batch_size": 6, "optim.grad_accum": 2,
                                                "optim.accum_mode": mode, "model.dropout": 0.0}))
    st = S.setup(cfg, None)
    batch = next(steps.epoch_batches(st, 0))
    grads = []
    for recompute, chunked, split in ((False, False, 1), (True, False, 1), (False, True, 1), (False, True, 2)):
        st.opt.zero_grad(set_to_none=True)
        st.oom = OomRescue(1, st.device)
        st.oom.recompute, st.oom.chunked, st.oom.split = recompute, chunked, split
        steps.step_gradients(st, batch)
        grads.append({n: p.grad.clone() for n, p in st.model.named_parameters() if p.grad is not None})
    for other in grads[1:]:
        assert other.keys() == grads[0].keys()
        for name in grads[0]:
            torch.testing.assert_close(other[name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_below_the_floor_it_gives_up_in_one_line(tiny_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _oom_above(monkeypatch, 2)
    cfg = tiny_config(tiny_data, **{"optim.batch_size": 8})
    with pytest.raises(OutOfMemoryFloorError) as e:
        T.fit(cfg, health=HealthConfig(min_micro_batch=4))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("out of memory at micro-batch 4 (epoch 1 step 1: CUDA out of memory.")
    assert "health.min_micro_batch 4" in msg

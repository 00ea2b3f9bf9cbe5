"""Gradient accumulation: the cached step (one forward over the whole step, its layers recomputed or not, and
GradCache over micro-batches, which the out-of-memory rescue and models of your own use) gives exactly the
gradient of the loss over the whole effective batch, with dropout on, clips of many lengths, duplicate
captions and every hard-negative mode; naive accumulation does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.checkpoint import checkpoint

from tests.train.conftest import WORDS, make_tiny, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import accumulate, varlen
from vlp_sweep.train import state as S
from vlp_sweep.train.accumulate import cached_backward, naive_backward, step_backward
from vlp_sweep.train.inputs.batch_plan import plan_frames
from vlp_sweep.train.inputs.packing import PackedBatch, build_packed

MICRO, N_MICRO = 32, 3
MODES = ("none", "hcl", "vsepp", "topk")


def _caption(i: int) -> str:
    """1 to 12 words; every 5th clip shares one caption with the others in its micro-batch and in the other
    micro-batches (duplicates across the whole step)."""
    if i % 5 == 0:
        return "the same caption"
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 12)) + f" w{i}"


@pytest.fixture(scope="module")
def step_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    n = MICRO * N_MICRO
    return make_tiny(tmp_path_factory.mktemp("accum") / "d", n_train=n, n_dev=4, siglip_dim=0,
                     texts=[_caption(i) for i in range(n)])


def _setup(data: Path, hard: str) -> tuple[S.TrainState, PackedBatch]:
    over = {"model.dropout": 0.3, "data.use_siglip": False, "data.max_text_len": 16, "optim.batch_size": MICRO,
            "optim.grad_accum": N_MICRO, "loss.hard_negatives": hard, "loss.hcl_beta": 1.0,
            "loss.vsepp_weight": 2.0, "loss.topk_k": 3, "loss.topk_weight": 3.0, "data.max_frames": 12}
    st = S.setup(make_config(tiny_config(data, **over)), None)
    st.model.train()
    plan = plan_frames(np.arange(MICRO * N_MICRO), st.train.length_host, 12, "crop", st.cfg.aug,
                       np.random.default_rng(0))
    return st, build_packed(st.train, plan, st.cfg.data, None, None, 16)


def _grads(st: S.TrainState) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in st.model.named_parameters() if p.grad is not None}


def _full_batch(st: S.TrainState, batch: PackedBatch) -> None:
    """The reference: the whole step's clips embedded with their graph, no recompute, one loss."""
    step_backward("cached", st.model, st.crit, batch, micro=len(batch))


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_the_setting_is_one_where_the_test_can_fail(step_data: Path) -> None:
    st, batch = _setup(step_data, "none")
    assert len(set(batch.video.lengths.tolist())) >= 3 and len(set(batch.text.lengths.tolist())) >= 3
    ids = [batch.select(i * MICRO, (i + 1) * MICRO).text_ids for i in range(N_MICRO)]
    assert all(len(set(i.tolist())) < len(i) for i in ids)  # duplicates inside each micro-batch ...
    assert set(ids[0].tolist()) & set(ids[1].tolist())  # ... and across micro-batches
    with torch.no_grad():  # dropout is on: two passes from different RNG states differ
        torch.manual_seed(1)
        first = st.model(batch)["video"]
        torch.manual_seed(2)
        assert not torch.allclose(first, st.model(batch)["video"])


@pytest.mark.parametrize("hard", MODES)
def test_the_cached_step_with_recompute_equals_the_full_batch_gradient(step_data: Path, hard: str) -> None:
    full, batch = _setup(step_data, hard)
    cached, _ = _setup(step_data, hard)
    torch.manual_seed(7)
    _full_batch(full, batch)
    torch.manual_seed(7)
    step_backward("cached", cached.model, cached.crit, batch, micro=MICRO, recompute=True)
    assert cached.model.net.recompute
    g_full, g_cached = _grads(full), _grads(cached)
    assert "logit_scale" in g_full
    for name in g_full:
        torch.testing.assert_close(g_cached[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_recompute_without_the_dropout_replay_gives_another_gradient(step_data: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The control that shows the parity test above can fail: recomputed layers with fresh dropout draws.
    full, batch = _setup(step_data, "hcl")
    cached, _ = _setup(step_data, "hcl")
    torch.manual_seed(7)
    _full_batch(full, batch)
    monkeypatch.setattr(varlen, "checkpoint", lambda fn, *a, **k: checkpoint(fn, *a, **k, preserve_rng_state=False))
    torch.manual_seed(7)
    step_backward("cached", cached.model, cached.crit, batch, micro=MICRO, recompute=True)
    assert _max_diff(_grads(full), _grads(cached)) > 1e-3


@pytest.mark.parametrize("hard", MODES)
def test_gradcache_over_micro_batches_equals_the_full_batch_gradient(step_data: Path, hard: str) -> None:
    full, batch = _setup(step_data, hard)
    cached, _ = _setup(step_data, hard)
    parts = [batch.select(i * MICRO, (i + 1) * MICRO) for i in range(N_MICRO)]
    torch.manual_seed(7)  # the reference: each micro-batch with its graph, in order, from the same RNG state
    outs = [full.model(b) for b in parts]
    full.crit(torch.cat([o["video"] for o in outs]), torch.cat([o["text"] for o in outs]), full.model.logit_scale,
              batch.text_ids)["loss"].backward()
    torch.manual_seed(7)
    cached_backward(cached.model, cached.crit, parts)
    g_full, g_cached = _grads(full), _grads(cached)
    for name in g_full:
        torch.testing.assert_close(g_cached[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_gradcache_without_the_dropout_replay_gives_another_gradient(step_data: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    full, batch = _setup(step_data, "hcl")
    cached, _ = _setup(step_data, "hcl")
    parts = [batch.select(i * MICRO, (i + 1) * MICRO) for i in range(N_MICRO)]
    torch.manual_seed(7)
    cached_backward(full.model, full.crit, parts)
    monkeypatch.setattr(accumulate, "set_rng_state", lambda state, device: None)
    torch.manual_seed(7)
    cached_backward(cached.model, cached.crit, parts)
    assert _max_diff(_grads(full), _grads(cached)) > 1e-3


@pytest.mark.parametrize("hard", MODES)
def test_naive_accumulation_differs_from_the_full_batch_gradient(step_data: Path, hard: str) -> None:
    full, batch = _setup(step_data, hard)
    naive, _ = _setup(step_data, hard)
    torch.manual_seed(7)
    _full_batch(full, batch)
    torch.manual_seed(7)
    step_backward("naive", naive.model, naive.crit, batch, micro=MICRO)  # fewer negatives per micro-batch
    assert _max_diff(_grads(full), _grads(naive)) > 1e-3


def test_the_naive_step_equals_naive_accumulation_micro_batch_by_micro_batch(step_data: Path) -> None:
    whole, batch = _setup(step_data, "topk")
    one_by_one, _ = _setup(step_data, "topk")
    one_by_one.model.net.load_state_dict(whole.model.net.state_dict())
    for st in (whole, one_by_one):  # dropout off: the two consume the RNG differently
        for m in st.model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    step_backward("naive", whole.model, whole.crit, batch, micro=MICRO)
    naive_backward(one_by_one.model, one_by_one.crit, [batch.select(i * MICRO, (i + 1) * MICRO)
                                                       for i in range(N_MICRO)])
    g_whole, g_one = _grads(whole), _grads(one_by_one)
    for name in g_whole:
        torch.testing.assert_close(g_one[name], g_whole[name], rtol=1e-4, atol=1e-6, msg=name)

"""Gradient accumulation: GradCache (cached) gives exactly the gradient of the loss over the whole
effective batch, with dropout on, several length groups per micro-batch, duplicate captions and every
hard-negative mode; naive accumulation does not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.conftest import WORDS, make_tiny, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import accumulate
from vlp_sweep.train import trainer as T
from vlp_sweep.train.accumulate import cached_backward, naive_backward
from vlp_sweep.train.batching import make_batch

MICRO, N_MICRO = 32, 3  # 32 rows: the smallest micro-batch the model splits into two length groups
MODES = ("none", "hcl", "vsepp", "topk")


def _caption(i: int) -> str:
    """1 to 12 words (two text length groups per micro-batch); every 5th clip shares one caption with
    the others in its micro-batch and in the other micro-batches (duplicates across the whole step)."""
    if i % 5 == 0:
        return "the same caption"
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 12)) + f" w{i}"


@pytest.fixture(scope="module")
def step_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    n = MICRO * N_MICRO
    return make_tiny(tmp_path_factory.mktemp("accum") / "d", n_train=n, n_dev=4, siglip_dim=0,
                     texts=[_caption(i) for i in range(n)])


def _setup(data: Path, hard: str) -> tuple[T._State, list[dict[str, torch.Tensor]]]:
    over = {"model.dropout": 0.3, "data.use_siglip": False, "data.max_text_len": 16, "optim.batch_size": MICRO,
            "optim.grad_accum": N_MICRO, "loss.hard_negatives": hard, "loss.hcl_beta": 1.0,
            "loss.vsepp_weight": 2.0, "loss.topk_k": 3, "loss.topk_weight": 3.0, "run.length_buckets": 4}
    st = T._setup(make_config(tiny_config(data, **over)), None)
    st.model.train()
    idx = torch.arange(MICRO * N_MICRO)
    return st, [make_batch(st.train, idx[i * MICRO:(i + 1) * MICRO], st.cfg.data, None, None) for i in range(N_MICRO)]


def _grads(st: T._State) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in st.model.named_parameters() if p.grad is not None}


def _full_batch(st: T._State, batches: list[dict[str, torch.Tensor]]) -> None:
    """The reference: every micro-batch embedded with its graph, in order, from the same RNG state (so
    the same dropout draws), then one loss over all of them and one backward."""
    outs = [st.model(b, st.model.group_plan(b)) for b in batches]
    ids = torch.cat([b["text_ids"] for b in batches])
    st.crit(torch.cat([o["video"] for o in outs]), torch.cat([o["text"] for o in outs]), st.model.logit_scale,
            ids)["loss"].backward()


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_the_setting_is_one_where_the_test_can_fail(step_data: Path) -> None:
    st, batches = _setup(step_data, "none")
    for b in batches:  # at least two length groups of video and of text in every micro-batch
        video_groups, text_groups = st.model.group_plan(b)
        assert len(video_groups) >= 2 and len(text_groups) >= 2
        assert len({w for _, w, _ in text_groups}) >= 2  # groups of really different widths
    ids = [b["text_ids"] for b in batches]
    assert all(len(set(i.tolist())) < len(i) for i in ids)  # duplicates inside each micro-batch ...
    assert set(ids[0].tolist()) & set(ids[1].tolist())  # ... and across micro-batches
    with torch.no_grad():  # dropout is on: two passes from different RNG states differ
        torch.manual_seed(1)
        first = st.model(batches[0])["video"]
        torch.manual_seed(2)
        assert not torch.allclose(first, st.model(batches[0])["video"])


@pytest.mark.parametrize("hard", MODES)
def test_cached_accumulation_equals_the_full_batch_gradient(step_data: Path, hard: str) -> None:
    full, batches = _setup(step_data, hard)
    cached, _ = _setup(step_data, hard)
    torch.manual_seed(7)
    _full_batch(full, batches)
    torch.manual_seed(7)
    cached_backward(cached.model, cached.crit, batches)
    g_full, g_cached = _grads(full), _grads(cached)
    assert "logit_scale" in g_full
    for name in g_full:
        torch.testing.assert_close(g_cached[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("hard", MODES)
def test_naive_accumulation_differs_from_the_full_batch_gradient(step_data: Path, hard: str) -> None:
    full, batches = _setup(step_data, hard)
    naive, _ = _setup(step_data, hard)
    torch.manual_seed(7)
    _full_batch(full, batches)
    torch.manual_seed(7)
    naive_backward(naive.model, naive.crit, batches)  # fewer negatives per micro-batch: another gradient
    assert _max_diff(_grads(full), _grads(naive)) > 1e-3


def test_without_the_dropout_replay_the_gradient_is_wrong(step_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The control that shows the parity test above can fail: a second pass with fresh dropout draws.
    full, batches = _setup(step_data, "hcl")
    cached, _ = _setup(step_data, "hcl")
    torch.manual_seed(7)
    _full_batch(full, batches)
    monkeypatch.setattr(accumulate, "set_rng_state", lambda state, device: None)
    torch.manual_seed(7)
    cached_backward(cached.model, cached.crit, batches)
    assert _max_diff(_grads(full), _grads(cached)) > 1e-3

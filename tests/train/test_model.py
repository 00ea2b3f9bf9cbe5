"""The built-in model over packed batches: the same embeddings and gradients as ``nn.TransformerEncoder``'s
own padded forward with a key padding mask (several lengths, holes from frame masking), the attention
backends alike (dropout on, on a GPU), and compiled towers that match eager (dropout on too) and replay their
dropout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from tests.train.conftest import random_split
from vlp_sweep.config import make_config
from vlp_sweep.train.contract import ContrastiveModel
from vlp_sweep.train.factory import BUILTIN_FACTORY, ModelDims
from vlp_sweep.train.inputs.batch_plan import plan_frames
from vlp_sweep.train.inputs.batching import SplitTensors
from vlp_sweep.train.inputs.packing import PackedBatch, build_packed, padded_batch
from vlp_sweep.train.model import VLPModel

T_MAX, L_MAX = 40, 10
ARGS = ModelDims(kpt_dim=9, siglip_dim=6, text_feature_dim=0, vocab_size=40, max_frames=T_MAX, max_text_len=L_MAX,
                 embed_dim=16)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def make_model(dropout: float = 0.0, device: str = "cpu", layers: int = 2) -> VLPModel:
    torch.manual_seed(0)
    cfg = make_config({"model.dropout": dropout, "model.d_model": 32, "model.heads": 4, "model.embed_dim": 16,
                       "model.video_layers": layers, "model.text_layers": layers})
    return VLPModel(cfg.model, ARGS).to(device)


def batches(device: str = "cpu", n: int = 70) -> tuple[SplitTensors, PackedBatch, dict[str, Tensor]]:
    """One plan (random windows, frames masked, clips of 1..50 frames cut to 40) as packed and padded."""
    split = random_split(n, max_len=50, device=device)
    aug = make_config({"aug.frame_mask_prob": 0.2, "aug.speed": 0.2}).aug
    plan = plan_frames(np.arange(n), split.length_host, T_MAX, "crop", aug, np.random.default_rng(0))
    return split, build_packed(split, plan, make_config({}).data, None, None, L_MAX), padded_batch(split, plan, None,
                                                                                                   None)


def padded_reference(model: VLPModel, b: dict[str, Tensor]) -> dict[str, Tensor]:
    """The towers as a padded model computes them: nn.TransformerEncoder's forward with a key padding mask,
    mean over the real slots."""
    def pool(enc: torch.nn.TransformerEncoder, x: Tensor, mask: Tensor) -> Tensor:
        h = enc(x, src_key_padding_mask=~mask)
        m = mask[..., None].to(h.dtype)
        return (h * m).sum(1) / m.sum(1)

    assert model.kpt_proj is not None and model.siglip_proj is not None
    x = model.kpt_proj(b["kpts"]) + model.siglip_proj(b["siglip"]) + model.video_pos[:, :T_MAX]
    video = model.video_head(model.video_norm(pool(model.video_enc, model.drop(x), b["frame_mask"])))
    tokens = b["tokens"][:, :L_MAX]
    y = model.drop(model.tok(tokens) + model.text_pos[:, :tokens.shape[1]])
    text = model.text_head(model.text_norm(pool(model.text_enc, y, b["token_mask"])))
    return {"video": video, "text": text}


def _grads(model: torch.nn.Module, out: dict[str, Tensor]) -> dict[str, Tensor]:
    model.zero_grad(set_to_none=True)
    (out["video"].square().sum() + (out["video"] * out["text"]).sum()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("device", DEVICES)
def test_packed_towers_equal_the_padded_encoder_in_values_and_gradients(device: str) -> None:
    _, packed, padded = batches(device)
    lengths = packed.video.lengths.tolist()
    assert len(set(lengths)) > 10 and min(lengths) < T_MAX  # several lengths, short ones: padding would matter
    assert bool((~padded["frame_mask"][:, 0:T_MAX - 1] & padded["frame_mask"][:, 1:]).any())  # holes inside
    model = make_model(device=device)
    ours, ref = model(packed), padded_reference(model, padded)
    torch.testing.assert_close(ours["video"], ref["video"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours["text"], ref["text"], atol=1e-5, rtol=1e-4)
    g_ours, g_ref = _grads(model, model(packed)), _grads(model, padded_reference(model, padded))
    assert g_ours.keys() == g_ref.keys()
    for name in g_ref:
        torch.testing.assert_close(g_ours[name], g_ref[name], atol=1e-4, rtol=1e-4, msg=name)


def test_padding_would_change_the_result_without_the_mask() -> None:
    # The control: the comparison above can fail (unmasked padding attends and is averaged in).
    _, _, padded = batches()
    model = make_model()
    masked = padded_reference(model, padded)["video"]
    full = dict(padded, frame_mask=torch.ones_like(padded["frame_mask"]))
    assert not torch.allclose(masked, padded_reference(model, full)["video"], atol=1e-3)


def test_recompute_gives_the_same_gradients_with_dropout_on() -> None:
    _, packed, _ = batches()
    model = make_model(dropout=0.3)
    grads = []
    for recompute in (False, True):
        model.recompute = recompute
        torch.manual_seed(3)
        grads.append(_grads(model, model(packed)))
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5, msg=name)
    torch.manual_seed(4)  # the control: other dropout draws, other gradients
    other = _grads(model, model(packed))
    assert max(float((other[k] - grads[0][k]).abs().max()) for k in other) > 1e-3


@CUDA
def test_varlen_and_padded_attention_agree_with_dropout_on() -> None:
    _, packed, _ = batches("cuda")
    outs = []
    for backend in ("varlen", "padded"):
        model = make_model(dropout=0.2, device="cuda")
        assert model.set_attention(backend, torch.device("cuda"), torch.bfloat16) == backend
        torch.manual_seed(5)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(packed)
        outs.append((out, _grads(model, out)))
    (a, ga), (b, gb) = outs
    torch.testing.assert_close(a["video"].float(), b["video"].float(), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(a["text"].float(), b["text"].float(), atol=3e-2, rtol=3e-2)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=5e-2, rtol=5e-2, msg=name)


def test_asking_for_varlen_where_it_cannot_run_falls_back_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    model = make_model()
    with caplog.at_level("WARNING"):
        got = model.set_attention("varlen", torch.device("cpu"), torch.float32)
    assert got == "padded"
    lines = [r.getMessage() for r in caplog.records if "run.attention" in r.getMessage()]
    assert len(lines) == 1 and "falling back to padded attention" in lines[0]
    caplog.clear()
    assert model.set_attention("auto", torch.device("cpu"), torch.float32) == "padded"
    assert not caplog.records  # auto picks silently


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="inductor needs a C compiler on the CPU")
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_towers_match_eager_and_replay_dropout(device: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A private kernel cache: a shared /tmp/torchinductor_<user> left half-written by a killed run breaks
    # the compile ("file too short") for reasons that are not this code's.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    _, packed, _ = batches(device)
    _, other, _ = batches(device, n=50)  # another batch: other sizes, the same graph (dynamic shapes)
    eager, compiled = make_model(0.3, device), make_model(0.3, device)
    wrapped = ContrastiveModel(compiled, ARGS, BUILTIN_FACTORY, 0.0, True)
    wrapped.compile_model()  # what run.compile calls
    torch.manual_seed(3)  # training mode, dropout on: the same draws as eager, so the same numbers
    train_eager = eager(packed)["video"]
    torch.manual_seed(3)
    torch.testing.assert_close(compiled(packed)["video"], train_eager, atol=1e-5, rtol=1e-4)
    eager.eval(), compiled.eval()
    with torch.no_grad():
        for b in (packed, other):
            torch.testing.assert_close(eager(b)["video"], compiled(b)["video"], atol=1e-4, rtol=1e-4)
    compiled.train()
    state = torch.get_rng_state(), (torch.cuda.get_rng_state() if device == "cuda" else None)
    with torch.no_grad():
        first = compiled(packed)  # GradCache's pass without a graph ...
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1])
    second = compiled(packed)  # ... and its re-run with one must draw the same dropout
    assert torch.equal(first["video"], second["video"].detach())
    assert torch.equal(first["text"], second["text"].detach())

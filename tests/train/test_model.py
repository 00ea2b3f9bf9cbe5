"""Length groups: cutting padding must not change the embeddings (beyond float rounding) or the gradients,
eager or compiled, and a compiled tower must replay its dropout from the RNG state (GradCache needs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vlp_sweep.config import make_config
from vlp_sweep.train.factory import ModelDims
from vlp_sweep.train.model import VLPModel, length_groups

ARGS = ModelDims(kpt_dim=12, siglip_dim=6, text_feature_dim=0, vocab_size=40, max_frames=40, max_text_len=10,
                 embed_dim=16)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_model(buckets: int, dropout: float = 0.0, device: str = "cpu") -> VLPModel:
    torch.manual_seed(0)
    cfg = make_config({"model.dropout": dropout, "model.d_model": 32, "model.heads": 4, "model.embed_dim": 16})
    return VLPModel(cfg.model, ARGS, buckets).to(device)


def make_batch(b: int = 70, seed: int = 1, device: str = "cpu") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    length = torch.randint(1, ARGS.max_frames + 1, (b,), generator=g)
    mask = torch.arange(ARGS.max_frames)[None] < length[:, None]
    mask[5, 0] = False  # a hole (frame masking), the row still valid after it
    tlen = torch.randint(1, ARGS.max_text_len + 1, (b,), generator=g)
    tmask = torch.arange(ARGS.max_text_len)[None] < tlen[:, None]
    batch = {"kpts": torch.randn(b, ARGS.max_frames, ARGS.kpt_dim, generator=g) * mask[..., None],
             "siglip": torch.randn(b, ARGS.max_frames, ARGS.siglip_dim, generator=g) * mask[..., None],
             "tokens": torch.randint(1, ARGS.vocab_size, (b, ARGS.max_text_len), generator=g) * tmask,
             "frame_mask": mask, "token_mask": tmask}
    return {k: v.to(device) for k, v in batch.items()}


def test_length_groups_partition_rows_and_cover_every_valid_slot() -> None:
    mask = make_batch()["frame_mask"]
    groups = length_groups(mask, 4, min_rows=16)
    assert len(groups) == 4
    rows = torch.cat([g[0] for g in groups])
    assert sorted(rows.tolist()) == list(range(len(mask)))
    end = (mask * torch.arange(1, mask.shape[1] + 1)).amax(1)
    widths = [w for _, w, _ in groups]
    assert widths == sorted(widths) and widths[0] < mask.shape[1]
    for idx, width, masked in groups:
        assert int(end[idx].max()) <= width and (width % 8 == 0 or width == mask.shape[1])
        assert not mask[idx, width:].any()  # nothing valid is cut
        assert masked == bool((~mask[idx, :width]).any())
    assert len(length_groups(mask, 4, min_rows=32)) == 2  # 70 rows: at most 2 groups of >= 32
    assert len(length_groups(mask[:10], 4, min_rows=16)) == 1  # too few rows: one group, still cut


def test_a_group_without_padding_is_encoded_unmasked() -> None:
    mask = torch.ones(20, 16, dtype=torch.bool)
    assert [(len(i), w, m) for i, w, m in length_groups(mask, 2, min_rows=8)] == [(10, 16, False), (10, 16, False)]
    mask[3, 15] = False
    assert [m for _, _, m in length_groups(mask, 2, min_rows=8)] == [True, False]  # the short row sorts first


def test_a_group_without_padding_reaches_the_tower_unmasked() -> None:
    model = make_model(4)
    batch = make_batch(64)
    batch["frame_mask"][:] = True
    batch["frame_mask"][:32, 10:] = False  # half the clips 10 frames long, half full width
    seen: list[tuple[int, bool]] = []

    def video(k: torch.Tensor, s: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
        seen.append((k.shape[1], m is None))
        return model._video(k, s, m)

    model._video_fn = video
    model(batch)
    assert seen == [(16, False), (16, False), (40, True), (40, True)]  # short groups cut to 16, masked
    seen.clear()
    model._compiled = True  # compiled: one graph, always with a mask
    model(batch)
    assert [m for _, m in seen] == [False] * 4


@pytest.mark.parametrize("device", DEVICES)
def test_grouped_encoding_equals_full_width_embeddings_and_gradients(device: str) -> None:
    batch = make_batch(device=device)
    full, grouped = make_model(0, device=device), make_model(4, device=device)
    outs = []
    for model in (full, grouped):
        out = model(batch)
        (out["video"].square().sum() + (out["video"] * out["text"]).sum()).backward()
        outs.append((out, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (a, ga), (b, gb) = outs
    torch.testing.assert_close(a["video"], b["video"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a["text"], b["text"], atol=1e-5, rtol=1e-5)
    assert ga.keys() == gb.keys()
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.heavy  # left out of `make test` (CI) for time; `make test-all` runs it
@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="inductor needs a C compiler on the CPU")
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_towers_match_eager_and_replay_dropout(device: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A private kernel cache: a shared /tmp/torchinductor_<user> left half-written by a killed run breaks
    # the compile ("file too short") for reasons that are not this code's.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    batch = make_batch(device=device)
    eager, compiled = make_model(4, dropout=0.3, device=device), make_model(4, dropout=0.3, device=device)
    compiled.compile_towers()
    eager.eval(), compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(eager(batch)["video"], compiled(batch)["video"], atol=1e-4, rtol=1e-4)
    compiled.train()
    state = torch.get_rng_state(), (torch.cuda.get_rng_state() if device == "cuda" else None)
    with torch.no_grad():
        first = compiled(batch)  # GradCache's pass without a graph ...
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1])
    second = compiled(batch)  # ... and its re-run with one must draw the same dropout
    assert torch.equal(first["video"], second["video"].detach())
    assert torch.equal(first["text"], second["text"].detach())

"""ContrastiveLoss against a plain reference: values and gradients, every mode, with duplicate captions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from torch.nn.functional import normalize

from vlp_sweep.cli import main
from vlp_sweep.config import LossConfig, make_config
from vlp_sweep.errors import UserError
from vlp_sweep.train.loss import ContrastiveLoss

F64 = torch.float64
MODES = ("none", "hcl", "vsepp", "topk")
BASE = LossConfig(hcl_beta=0.7, hcl_tau_plus=0.1, vsepp_margin=0.2, vsepp_weight=0.8,
                  topk_k=3, topk_weight=2.5)

# ---------------------------------------------------------------------------------------------
# Reference: one query at a time, Python lists, float64, the formulas written out literally.
# ---------------------------------------------------------------------------------------------


def ref_infonce_row(pos: torch.Tensor, negs: list[torch.Tensor],
                    weights: list[float] | None = None) -> torch.Tensor:
    weights = weights if weights is not None else [1.0] * len(negs)
    denominator = torch.exp(pos)
    for w, n in zip(weights, negs):
        denominator = denominator + w * torch.exp(n)
    return -torch.log(torch.exp(pos) / denominator)


def ref_topk_row(pos: torch.Tensor, negs: list[torch.Tensor], k: int, weight: float) -> torch.Tensor:
    order = sorted(range(len(negs)), key=lambda j: negs[j].detach().item(), reverse=True)
    hard = set(order[:min(k, len(negs))])
    return ref_infonce_row(pos, negs, [weight if j in hard else 1.0 for j in range(len(negs))])


def ref_hcl_row(pos: torch.Tensor, negs: list[torch.Tensor], scale: torch.Tensor, beta: float,
                tau_plus: float) -> torch.Tensor:
    if not negs:
        return torch.zeros((), dtype=F64)  # the positive is the whole softmax
    n = len(negs)
    e_pos = torch.exp(pos)
    e_negs = torch.stack([torch.exp(x) for x in negs])
    imp = torch.stack([torch.exp(beta * x) for x in negs])
    reweighted = n * (imp * e_negs).sum() / imp.sum()
    ng = (-tau_plus * n * e_pos + reweighted) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * torch.exp(-scale))
    return -torch.log(e_pos / (e_pos + ng))


def ref_vsepp_row(cos_pos: torch.Tensor, cos_negs: list[torch.Tensor], margin: float) -> torch.Tensor:
    if not cos_negs:
        return torch.zeros((), dtype=F64)
    return torch.relu(margin - cos_pos + max(cos_negs, key=lambda c: c.detach().item()))


def is_negative(i: int, j: int, ids: list[int] | None, cfg: LossConfig) -> bool:
    same_text = cfg.dedup_texts and ids is not None and ids[i] == ids[j]
    return i != j and not same_text


def ref_loss(video: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor, ids: list[int] | None,
             cfg: LossConfig) -> dict[str, torch.Tensor]:
    scale = torch.exp(logit_scale)  # no clamp: the trainer clamps the parameter, not the loss
    b = len(video)
    plain, reweighted, hinge = [], [], []
    for queries, keys in ((video, text), (text, video)):  # video->text, then text->video
        p_rows, r_rows, h_rows = [], [], []
        for i in range(b):
            cos_pos = torch.dot(queries[i], keys[i])
            cos_negs = [torch.dot(queries[i], keys[j]) for j in range(b) if is_negative(i, j, ids, cfg)]
            pos, negs = scale * cos_pos, [scale * c for c in cos_negs]
            p_rows.append(ref_infonce_row(pos, negs))
            if cfg.hard_negatives == "hcl":
                r_rows.append(ref_hcl_row(pos, negs, scale, cfg.hcl_beta, cfg.hcl_tau_plus))
            if cfg.hard_negatives == "topk":
                r_rows.append(ref_topk_row(pos, negs, cfg.topk_k, cfg.topk_weight))
            h_rows.append(ref_vsepp_row(cos_pos, cos_negs, cfg.vsepp_margin))
        plain.append(torch.stack(p_rows).mean())
        reweighted.append(torch.stack(r_rows).mean() if r_rows else torch.zeros((), dtype=F64))
        hinge.append(torch.stack(h_rows).mean())
    infonce = (plain[0] + plain[1]) / 2
    if cfg.hard_negatives == "none":
        return {"loss": infonce, "infonce": infonce, "hinge": torch.zeros((), dtype=F64), "scale": scale}
    if cfg.hard_negatives == "vsepp":
        h = hinge[0] + hinge[1]
        return {"loss": infonce + cfg.vsepp_weight * h, "infonce": infonce, "hinge": h, "scale": scale}
    loss = (reweighted[0] + reweighted[1]) / 2
    return {"loss": loss, "infonce": infonce, "hinge": torch.zeros((), dtype=F64), "scale": scale}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def make_batch(b: int, seed: int, e: int = 8, pos_strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm float64 video/text ``[b, e]``; pos_strength > 0 makes pairs similar."""
    g = torch.Generator().manual_seed(seed)
    v = normalize(torch.randn(b, e, generator=g, dtype=F64), dim=1)
    t = normalize(pos_strength * v + torch.randn(b, e, generator=g, dtype=F64), dim=1)
    return v, t


def make_ids(b: int, seed: int, duplicates: bool) -> list[int] | None:
    if not duplicates:
        return None
    g = torch.Generator().manual_seed(seed + 1000)
    # Few distinct captions, so that most rows have a duplicate.
    return torch.randint(0, max(2, b // 2), (b,), generator=g).tolist()


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def value_and_grads(fn: LossFn, video: torch.Tensor, text: torch.Tensor, scale: float,
                    dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
    """``fn``'s outputs and the gradient of its loss w.r.t. video, text and the log scale."""
    v = video.to(dtype).clone().requires_grad_()
    t = text.to(dtype).clone().requires_grad_()
    ls = torch.tensor(math.log(scale), dtype=dtype, requires_grad=True)
    out = fn(v, t, ls)
    if not out["loss"].requires_grad:  # the reference's loss is a constant when nothing is contrasted
        return out, tuple(torch.zeros_like(x) for x in (v, t, ls))
    grads = torch.autograd.grad(out["loss"], (v, t, ls), allow_unused=True)
    grads = tuple(torch.zeros_like(x) if g is None else g for g, x in zip(grads, (v, t, ls)))
    return out, grads


def compare(cfg: LossConfig, video: torch.Tensor, text: torch.Tensor, scale: float,
            ids: list[int] | None) -> None:
    """The module in float32 against the float64 reference: all outputs and all three gradients."""
    ids_t = None if ids is None else torch.tensor(ids, dtype=torch.long)
    mine, g_mine = value_and_grads(lambda v, t, ls: ContrastiveLoss(cfg)(v, t, ls, ids_t), video, text, scale,
                                   torch.float32)
    ref, g_ref = value_and_grads(lambda v, t, ls: ref_loss(v, t, ls, ids, cfg), video, text, scale, F64)
    for key in ("loss", "infonce", "hinge", "scale"):
        assert mine[key].dtype == torch.float32 and mine[key].shape == ()
        torch.testing.assert_close(mine[key].double(), ref[key].detach(), rtol=1e-4, atol=1e-5, msg=key)
    for name, a, b in zip(("video", "text", "logit_scale"), g_mine, g_ref):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=2e-5, msg=f"grad {name}")


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("b", [2, 5, 9, 16])
@pytest.mark.parametrize("duplicates", [False, True])
def test_matches_reference(mode: str, b: int, duplicates: bool) -> None:
    video, text = make_batch(b, seed=b)
    compare(replace(BASE, hard_negatives=mode), video, text, scale=1 / 0.07, ids=make_ids(b, b, duplicates))


@pytest.mark.parametrize("mode", MODES)
def test_dedup_off_ignores_text_ids(mode: str) -> None:
    video, text = make_batch(7, seed=3)
    cfg = replace(BASE, hard_negatives=mode, dedup_texts=False)
    compare(cfg, video, text, scale=20.0, ids=[0, 0, 1, 1, 1, 2, 3])
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    args = (video.float(), text.float(), torch.tensor(3.0))
    torch.testing.assert_close(ContrastiveLoss(cfg)(*args, ids)["loss"], ContrastiveLoss(cfg)(*args)["loss"])


def test_dedup_changes_the_loss() -> None:
    video, text = make_batch(6, seed=4)
    args = (video.float(), text.float(), torch.tensor(3.0))
    ids = torch.tensor([0, 0, 1, 2, 3, 4])
    with_ids, without = ContrastiveLoss(BASE)(*args, ids)["loss"], ContrastiveLoss(BASE)(*args)["loss"]
    assert with_ids < without  # a duplicate no longer counts against its twin


def count_floored_rows(video: torch.Tensor, text: torch.Tensor, scale: float, cfg: LossConfig) -> int:
    """Video->text rows whose debiased negative term falls below the floor N * exp(-scale)."""
    b, count = len(video), 0
    for i in range(b):
        pos = scale * torch.dot(video[i], text[i])
        negs = scale * torch.stack([torch.dot(video[i], text[j]) for j in range(b) if j != i])
        imp = torch.exp(cfg.hcl_beta * negs)
        rew = (b - 1) * (imp * negs.exp()).sum() / imp.sum()
        ng = (rew - cfg.hcl_tau_plus * (b - 1) * pos.exp()) / (1 - cfg.hcl_tau_plus)
        count += int(ng < (b - 1) * math.exp(-scale))
    return count


# Strong positives with a large class prior push the debiased term below the floor in some rows;
# at a small scale the floor is large enough for its gradient w.r.t. the scale to matter.
@pytest.mark.parametrize(("tau_plus", "scale", "pos_strength"), [(0.3, 10.0, 2.0), (0.6, 2.0, 1.0)])
def test_hcl_floor_is_exercised_and_matches(tau_plus: float, scale: float, pos_strength: float) -> None:
    cfg = replace(BASE, hard_negatives="hcl", hcl_beta=1.0, hcl_tau_plus=tau_plus)
    video, text = make_batch(8, seed=5, pos_strength=pos_strength)
    assert 0 < count_floored_rows(video, text, scale, cfg) < 8
    compare(cfg, video, text, scale=scale, ids=None)
    compare(cfg, video, text, scale=scale, ids=[0, 0, 1, 2, 3, 3, 4, 5])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_topk_with_fewer_valid_negatives_than_k(k: int) -> None:
    # Row 0 has one valid negative (row 3): only that one may be upweighted, never the positive.
    video, text = make_batch(6, seed=13)
    cfg = replace(BASE, hard_negatives="topk", topk_k=k)
    compare(cfg, video, text, scale=12.0, ids=[0, 0, 0, 1, 1, 2])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ids", [[7, 7, 7, 7], [0, 0, 1], [5]])
def test_rows_without_negatives(mode: str, ids: list[int]) -> None:
    video, text = make_batch(len(ids), seed=6)
    compare(replace(BASE, hard_negatives=mode), video, text, scale=14.0, ids=ids)
    if len(set(ids)) == 1:  # nothing to contrast: zero loss, zero gradient, no NaN
        v = video.float().requires_grad_()
        out = ContrastiveLoss(replace(BASE, hard_negatives=mode))(v, text.float(), torch.tensor(2.0),
                                                                  torch.tensor(ids))
        out["loss"].backward()
        assert out["loss"].item() == 0.0
        assert v.grad is not None and torch.all(v.grad == 0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", [100.0, 200.0])
def test_scale_at_or_above_the_cap_still_gets_a_gradient(mode: str, scale: float) -> None:
    # exp(log 100) is 100.0000076 in float32: a clamp at 100 inside the loss would stop this gradient,
    # and a run started at log(100) could never move its scale (option C would compare a frozen scale).
    video, text = make_batch(6, seed=7)
    ls = torch.tensor(math.log(scale), requires_grad=True)
    out = ContrastiveLoss(replace(BASE, hard_negatives=mode))(video.float(), text.float(), ls)
    out["loss"].backward()
    assert out["scale"].item() == pytest.approx(scale, rel=1e-6)
    assert ls.grad is not None and float(ls.grad) != 0.0
    compare(replace(BASE, hard_negatives=mode), video, text, scale=scale, ids=[0, 1, 1, 2, 3, 4])


@pytest.mark.parametrize("mode", MODES)
def test_large_batch_logits_near_100_stay_finite(mode: str) -> None:
    # Tightly clustered embeddings: every logit is close to 100; HCL's exp((1+beta)*100) would overflow.
    g = torch.Generator().manual_seed(8)
    b, e = 1024, 32
    centre = torch.randn(1, e, generator=g)
    video = normalize(centre + 0.01 * torch.randn(b, e, generator=g), dim=1).requires_grad_()
    text = normalize(centre + 0.01 * torch.randn(b, e, generator=g), dim=1).requires_grad_()
    ls = torch.tensor(math.log(100.0), requires_grad=True)
    ids = torch.randint(0, b // 4, (b,), generator=g)
    cfg = replace(BASE, hard_negatives=mode, hcl_beta=1.0)
    out = ContrastiveLoss(cfg)(video, text, ls, ids)
    out["loss"].backward()
    for key, value in out.items():
        assert torch.isfinite(value), key
    for grad in (video.grad, text.grad, ls.grad):
        assert grad is not None and torch.isfinite(grad).all()


@pytest.mark.parametrize("mode", MODES)
def test_autocast_does_not_lower_precision(mode: str) -> None:
    video, text = make_batch(9, seed=9)
    ids = torch.tensor([0, 1, 1, 2, 3, 4, 5, 5, 6])
    args = (video.float(), text.float(), torch.tensor(math.log(50.0)), ids)
    crit = ContrastiveLoss(replace(BASE, hard_negatives=mode))
    plain = crit(*args)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = crit(*args)
    for key in plain:
        assert mixed[key].dtype == torch.float32
        torch.testing.assert_close(mixed[key], plain[key], rtol=0, atol=0)


def test_low_precision_inputs_are_accepted() -> None:
    video, text = make_batch(5, seed=10)
    out = ContrastiveLoss(BASE)(video.bfloat16(), text.bfloat16(), torch.tensor(2.0, dtype=torch.bfloat16))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])


def test_hinge_reported_only_for_vsepp_and_infonce_is_plain() -> None:
    video, text = make_batch(6, seed=11)
    args = (video.float(), text.float(), torch.tensor(2.5), torch.tensor([0, 0, 1, 2, 3, 4]))
    plain = ContrastiveLoss(BASE)(*args)["loss"]
    for mode in MODES:
        out = ContrastiveLoss(replace(BASE, hard_negatives=mode))(*args)
        torch.testing.assert_close(out["infonce"], plain)
        assert (float(out["hinge"]) > 0) == (mode == "vsepp")


def test_unknown_mode_is_an_error() -> None:
    video, text = make_batch(3, seed=12)
    with pytest.raises(ValueError, match="hard_negatives"):
        ContrastiveLoss(replace(BASE, hard_negatives="bogus"))(video.float(), text.float(), torch.tensor(1.0))


@pytest.mark.parametrize(("over", "message"), [
    ({"loss.max_logit_scale": 0}, r"^loss\.max_logit_scale: must be >= 1\.0, got 0\.0$"),
    ({"loss.max_logit_scale": -5.0}, r"^loss\.max_logit_scale: must be >= 1\.0"),
    ({"loss.temperature": 2.0}, r"^loss\.temperature: must be <= 1\.0, got 2\.0$"),
    ({"loss.temperature": "log(200)"}, r"^loss\.temperature \(0\.005\) would start the logit scale at 200, above "
                                        r"loss\.max_logit_scale \(100\)$"),
    ({"loss.temperature": "log(100)", "loss.max_logit_scale": 50}, r"^loss\.temperature \(0\.01\) .* \(50\)$"),
])
def test_a_scale_setting_the_trainer_cannot_honour_is_one_line_naming_the_key(
        over: dict[str, object], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match=message):
        make_config(over)
    args = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    assert main(["train", *args, "--set", "data.path=/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: loss.")


def test_log_100_starts_exactly_at_the_default_cap() -> None:
    cfg = make_config({"loss.temperature": "log(100)"})
    assert cfg.loss.temperature == 0.01 and cfg.logit_scale_init == pytest.approx(math.log(100.0))

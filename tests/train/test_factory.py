"""Model factories: the options checked against the factory's signature, the bad-input lines of the
issue, and a user's module trained, checkpointed and rebuilt through the one path of the trainer."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tests.train.conftest import cfg_for
from vlp_sweep.config import make_config
from vlp_sweep.errors import UserError
from vlp_sweep.train import state as S
from vlp_sweep.train.factory import BUILTIN_FACTORY, ModelDims, add_import_paths
from vlp_sweep.train.trainer import fit

# ------------------------------------------------------------------ options against the signature


def test_options_are_checked_against_the_factorys_signature(user_module: str) -> None:
    f = f"{user_module}:build"
    cfg = make_config({"model.factory": f, "model.options.hidden": 32, "model.options.dropout": 1})
    assert cfg.model.options == {"hidden": 32, "dropout": 1}
    assert cfg.flat()["model.options.hidden"] == 32
    with pytest.raises(UserError, match=r"^model.options.hiden: .* takes no option 'hiden' \(did you mean 'hidden'"):
        make_config({"model.factory": f, "model.options.hiden": 32})
    with pytest.raises(UserError, match=r"^model.options.hidden: expected int .*got str 'big'"):
        make_config({"model.factory": f, "model.options.hidden": "big"})
    with pytest.raises(UserError, match=r"^model.options.hidden: expected int .*got bool"):
        make_config({"model.factory": f, "model.options.hidden": True})
    with pytest.raises(UserError, match=r"^model.options.act: expected "):
        make_config({"model.factory": f, "model.options.act": "tanh"})
    make_config({"model.factory": f, "model.options.act": "relu"})
    make_config({"model.factory": f"{user_module}:flat", "model.options.anything": 1})  # **options: any name


def test_builtin_keys_with_a_factory_of_your_own_and_options_with_the_builtin_are_errors(user_module: str) -> None:
    with pytest.raises(UserError, match=r"^model.d_model: an option of the built-in model"):
        make_config({"model.factory": f"{user_module}:build", "model.d_model": 64})
    with pytest.raises(UserError, match=r"^model.options.d_model: .*did you mean 'model.d_model'"):
        make_config({"model.options.d_model": 64})
    assert make_config({}).model.factory == BUILTIN_FACTORY


@pytest.mark.parametrize(("factory", "message"), [
    ("no_colon", r"^model.factory: expected 'package.module:function', got 'no_colon'"),
    ("missing_pkg.mod:build", r"cannot import module 'missing_pkg.mod' \(no module named 'missing_pkg'\): run from "),
    ("{m}:nope", r"has no 'nope'"),
    ("{m}:not_callable", r"'not_callable' is a int, not a function"),
])
def test_bad_factory_strings_are_one_line(user_module: str, factory: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        make_config({"model.factory": factory.format(m=user_module)})
    assert "\n" not in str(e.value)


def test_a_module_that_raises_on_import_is_named_with_its_exception(tmp_path: Path) -> None:
    (tmp_path / "raising_model_mod.py").write_text("raise ValueError('no GPU here\\nsecond line')\n")
    add_import_paths([tmp_path])
    try:
        with pytest.raises(UserError, match=r"importing 'raising_model_mod' raised ValueError: no GPU here$"):
            make_config({"model.factory": "raising_model_mod:build"})
    finally:
        sys.path.remove(str(tmp_path))


# ------------------------------------------------------------------ the trainer with a user's module


@pytest.mark.parametrize(("factory", "message"), [
    ("not_a_module", r"returned a dict, not a torch.nn.Module"),
    ("wrong_shape", r"returned 'video' of shape \[8, 3\]; expected \[8, 32\] \(batch size, model.embed_dim\)"),
    ("int_embeddings", r"returned 'video' of dtype torch.int64; expected a floating-point tensor"),
    ("needs_width", r"^model.options.width: .* needs it \(no default\)"),
])
def test_bad_modules_fail_at_build_or_first_batch_with_one_line(user_module: str, tiny_data: Path, factory: str,
                                                                 message: str) -> None:
    with pytest.raises(UserError, match=message):
        fit(cfg_for(tiny_data, f"{user_module}:{factory}", **{}))


def test_a_user_model_trains_checkpoints_and_is_rebuilt_by_eval(user_module: str, tiny_data: Path,
                                                               tmp_path: Path) -> None:
    from vlp_sweep.train.evaluate import evaluate_checkpoint

    cfg = cfg_for(tiny_data, f"{user_module}:build", hidden=24) | {
        "run.out_dir": str(tmp_path / "out"), "optim.epochs": 8, "optim.lr": 1e-2, "optim.batch_size": 24,
        "data.eval_split": "train"}  # the tiny data's dev clips share nothing with training: learn train
    res = fit(cfg)
    assert res.last.metrics["t2v_R1"] > 3 * 100 / 24  # well above chance
    ckpt = torch.load(tmp_path / "out" / "last.pt", weights_only=True)
    assert ckpt["config"]["model"]["factory"] == f"{user_module}:build"
    assert ckpt["config"]["model"]["options"] == {"hidden": 24}
    assert ckpt["model_args"]["embed_dim"] == 32 and "net.words.weight" in ckpt["model"]
    ev = evaluate_checkpoint(tmp_path / "out" / "last.pt", device="cpu")
    assert ev.result.metrics["t2v_R1"] == pytest.approx(res.last.metrics["t2v_R1"])
    resumed = fit(cfg | {"optim.epochs": 9}, resume=tmp_path / "out" / "last.pt")
    assert resumed.last.epoch == 9
    assert ckpt["model_source"] == str(tmp_path)
    # Not on sys.path any more (eval from another folder): the folder the checkpoint records is used.
    sys.modules.pop(user_module)
    sys.path.remove(str(tmp_path))
    assert evaluate_checkpoint(tmp_path / "out" / "last.pt", device="cpu").result.metrics == ev.result.metrics
    # The module gone at load time: one line naming it and how to make it importable.
    sys.modules.pop(user_module)
    (tmp_path / f"{user_module}.py").rename(tmp_path / "moved.txt")
    with pytest.raises(UserError, match=rf"cannot import module '{user_module}' .*list that folder under code:"):
        evaluate_checkpoint(tmp_path / "out" / "last.pt", device="cpu")


def test_the_trainer_keeps_the_logit_scale_unless_the_module_brings_its_own(user_module: str, tiny_data: Path) -> None:
    from vlp_sweep.train.contract import build_model

    dims = ModelDims(kpt_dim=4, siglip_dim=0, text_feature_dim=0, vocab_size=10, max_frames=8, max_text_len=4,
                     embed_dim=32)
    own = build_model(make_config(cfg_for(tiny_data, f"{user_module}:build", own_scale=True)), dims)
    assert own.logit_scale is own.net.logit_scale and float(own.logit_scale.detach()) == 1.5
    assert list(dict(own.named_parameters())).count("net.logit_scale") == 1
    assert "logit_scale" not in dict(own.named_parameters())
    kept = build_model(make_config(cfg_for(tiny_data, f"{user_module}:build")), dims)
    assert float(kept.logit_scale.detach()) == pytest.approx(make_config({}).logit_scale_init)


def test_cached_accumulation_is_exact_for_a_user_model_with_dropout(user_module: str, tiny_data: Path) -> None:
    """GradCache replays the module's RNG: its gradients equal one full-batch step over the same
    dropout masks (each micro-batch's forward drawn from the RNG state it started from)."""
    from vlp_sweep.train import steps
    from vlp_sweep.train.accumulate import cached_backward

    cfg = make_config(cfg_for(tiny_data, f"{user_module}:build", dropout=0.3) | {
        "optim.grad_accum": 3, "optim.accum_mode": "cached", "optim.batch_size": 6, "optim.grad_clip": 0.0})
    st = S.setup(cfg, None)
    micro = next(steps.epoch_batches(st, 0)).parts()
    torch.manual_seed(5)
    start = torch.get_rng_state()
    cached_loss = cached_backward(st.model, st.crit, micro)["loss"]
    cached = {n: p.grad.clone() for n, p in st.model.named_parameters() if p.grad is not None}
    st.model.zero_grad(set_to_none=True)
    # Reference: the micro-batches' forwards with a graph, drawn from the same RNG sequence, one loss.
    torch.set_rng_state(start)
    outs = [st.model(b) for b in micro]
    v, t = torch.cat([o["video"] for o in outs]), torch.cat([o["text"] for o in outs])
    ids = torch.cat([b["text_ids"] for b in micro])
    loss = st.crit(v, t, st.model.logit_scale, ids)["loss"]
    loss.backward()
    assert float(loss.detach()) == pytest.approx(float(cached_loss), rel=1e-5)
    assert cached.keys() == {n for n, p in st.model.named_parameters() if p.grad is not None}
    for n, p in st.model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(cached[n], p.grad, atol=1e-6, rtol=1e-4, msg=n)

"""The trainer end to end on a tiny dataset: learning, GradCache parity, exact resume, checkpoints."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.conftest import tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.errors import UserError
from vlp_sweep.metric_names import METRIC_NAMES, MODE
from vlp_sweep.train import state as S
from vlp_sweep.train import steps
from vlp_sweep.train import trainer as T
from vlp_sweep.train.checkpoint import load_checkpoint, save_checkpoint
from vlp_sweep.train.evaluate import evaluate_checkpoint
from vlp_sweep.train.loss import ContrastiveLoss


def test_overfits_tiny_dataset_to_perfect_recall(tiny_data: Path) -> None:
    cfg = tiny_config(tiny_data, **{"data.eval_split": "train", "optim.batch_size": 24, "optim.epochs": 60,
                                    "run.eval_every": 60, "data.use_siglip": False})
    res = T.fit(cfg)
    assert res.last.metrics["t2v_R1"] == 100.0
    assert res.last.metrics["v2t_R1"] == 100.0
    assert res.last.metrics["t2v_MedR"] == 1.0


def _one_step(st: S.TrainState) -> None:
    steps.train_step(st, next(steps.epoch_batches(st, 0)))


def test_a_scale_started_at_the_cap_moves_down(tiny_data: Path) -> None:
    # Option C's log(100) arm: at random init a sharper softmax costs loss, so the scale must fall.
    # With the old clamp inside the loss it got no gradient and stayed at 100 for ever.
    st = S.setup(make_config(tiny_config(tiny_data, **{"loss.temperature": "log(100)"})), None)
    assert float(st.model.logit_scale.detach().exp()) == pytest.approx(100.0)
    for _ in range(3):
        _one_step(st)
    assert float(st.model.logit_scale.detach().exp()) < 99.5


@pytest.mark.parametrize(("start", "want"), [(-1.0, 0.0), (7.0, math.log(50.0))])
def test_the_scale_parameter_is_clamped_into_0_and_log_cap_after_a_step(tiny_data: Path, start: float,
                                                                       want: float) -> None:
    st = S.setup(make_config(tiny_config(tiny_data, **{"loss.max_logit_scale": 50.0, "optim.lr": 1e-6})), None)
    with torch.no_grad():
        st.model.logit_scale.fill_(start)
    _one_step(st)
    assert float(st.model.logit_scale.detach()) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("hard", ["none", "hcl", "vsepp", "topk"])
def test_plain_infonce_is_reported_beside_each_modes_loss(tiny_data: Path, hard: str) -> None:
    cfg = make_config(tiny_config(tiny_data, **{"optim.epochs": 1, "loss.hard_negatives": hard,
                                                "loss.hcl_beta": 2.0, "loss.vsepp_weight": 5.0, "loss.topk_k": 2,
                                                "loss.topk_weight": 4.0}))
    st = S.setup(cfg, None)
    train = steps.train_epoch(st)[0]
    ev = T.evaluate(st)
    # eval_infonce: plain symmetric InfoNCE over the eval split at the model's scale, duplicates masked.
    t, v = T.embed_split(st.model, st.eval, cfg, st.device)
    plain = ContrastiveLoss(make_config({"loss.hard_negatives": "none"}).loss)
    want = plain(v, t, st.model.logit_scale.detach(), st.eval.text_ids)["loss"]
    assert ev.metrics["eval_infonce"] == pytest.approx(float(want), rel=1e-6)
    if hard == "none":
        assert ev.metrics["eval_loss"] == ev.metrics["eval_infonce"] and train["loss"] == train["infonce"]
    else:  # each mode's own loss means something else; the plain one is still there to compare on
        assert abs(ev.metrics["eval_loss"] - ev.metrics["eval_infonce"]) > 1e-3
        assert abs(train["loss"] - train["infonce"]) > 1e-3
    assert MODE["infonce"] == MODE["eval_infonce"] == "min" and {"infonce", "eval_infonce"} <= set(METRIC_NAMES)


class _Stop(Exception):
    pass


def test_resume_continues_bit_for_bit(tiny_data: Path, tmp_path: Path) -> None:
    over = {"optim.epochs": 4, "model.dropout": 0.2, "aug.keypoint_noise": 0.05, "aug.speed": 0.2,
            "aug.joint_mask_prob": 0.1, "optim.grad_accum": 2, "optim.batch_size": 4, "optim.warmup_steps": 3,
            "optim.schedule": "cosine"}
    straight = T.fit(tiny_config(tiny_data, **over, **{"run.out_dir": str(tmp_path / "a")}))

    def stop_after_two(ev: T.Evaluation) -> None:
        if ev.epoch == 2:
            raise _Stop

    cfg_b = tiny_config(tiny_data, **over, **{"run.out_dir": str(tmp_path / "b")})
    with pytest.raises(_Stop):
        T.fit(cfg_b, stop_after_two)
    resumed = T.fit(cfg_b, resume=tmp_path / "b" / "last.pt")
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 4 and a["step"] == b["step"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert resumed.last.metrics["t2v_R1"] == straight.last.metrics["t2v_R1"]
    assert resumed.last.metrics["loss"] == straight.last.metrics["loss"]


def test_best_checkpoint_survives_a_resume_that_does_not_beat_it(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, **{"optim.epochs": 3, "run.out_dir": str(tmp_path)})

    def stop_after_two(ev: T.Evaluation) -> None:
        if ev.epoch == 2:
            raise _Stop

    with pytest.raises(_Stop):
        T.fit(cfg, stop_after_two)
    last = load_checkpoint(tmp_path / "last.pt")
    best = load_checkpoint(tmp_path / "best.pt")
    assert (last["best_epoch"], last["best_value"]) == (best["epoch"], best["metrics"]["t2v_R1"])
    last["best_value"] = 101.0  # a best.pt no epoch can beat (R@1 is at most 100)
    save_checkpoint(last, tmp_path / "last.pt")
    res = T.fit(cfg, resume=tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 3
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == best["epoch"]  # not replaced by epoch 3
    assert res.best_checkpoint == (best["epoch"], 101.0) and res.best.epoch == 3  # what `train` prints


def test_best_pt_follows_the_sweeps_selection_rule_on_ties(tiny_data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Scripted metrics: R@1 ties at epochs 2-4, rsum breaks 2 vs 3, and 3 vs 4 tie on both (earlier wins).
    # The rule names epoch 3; "metric, then the earlier epoch" (the trainer's old rule) would name epoch 2.
    from vlp_sweep.selection import best_evaluation

    script = {1: (10.0, 50.0), 2: (20.0, 100.0), 3: (20.0, 120.0), 4: (20.0, 120.0)}
    real = T.evaluate

    def scripted(st: S.TrainState) -> T.Evaluation:
        ev = real(st)
        ev.metrics["t2v_R1"], ev.metrics["rsum"] = script[ev.epoch]
        return ev

    monkeypatch.setattr(T, "evaluate", scripted)
    cfg = tiny_config(tiny_data, **{"optim.epochs": 4, "run.out_dir": str(tmp_path)})
    res = T.fit(cfg)
    rows = [{"epoch": e, "t2v_R1": r1, "rsum": rs} for e, (r1, rs) in script.items()]
    assert best_evaluation(rows, "t2v_R1", "max")["epoch"] == 3  # type: ignore[index]
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 3
    assert res.best.epoch == 3 and res.best_checkpoint == (3, 20.0)
    assert load_checkpoint(tmp_path / "last.pt")["best_rsum"] == 120.0  # the tie-break survives a resume


def test_checkpoint_reevaluates_to_reported_metrics(tiny_data: Path, tmp_path: Path) -> None:
    res = T.fit(tiny_config(tiny_data, **{"run.out_dir": str(tmp_path)}))
    ev = evaluate_checkpoint(tmp_path / "last.pt", device="cpu")
    for key in ("t2v_R1", "t2v_R5", "v2t_R1", "t2v_MedR", "t2v_MeanR"):
        assert ev.result.metrics[key] == pytest.approx(res.last.metrics[key], abs=1e-9)


def test_importing_the_trainer_pulls_in_no_ray_cli_or_sweep() -> None:
    code = ("import sys, vlp_sweep.train.trainer, vlp_sweep.train.evaluate; "
            "bad = [m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'vlp_sweep.sweep', "
            "'vlp_sweep.cli', 'wandb', 'optuna'))]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_not_a_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(junk)


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def test_pickle_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": "vlp-sweep/checkpoint/1", "x": Evil()}, evil)
    with pytest.raises(UserError, match="refused by weights_only"):
        load_checkpoint(evil)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError):
        load_checkpoint(raw)


def test_checkpoint_of_another_model_shape_cannot_resume(tiny_data: Path, tmp_path: Path) -> None:
    T.fit(tiny_config(tiny_data, **{"optim.epochs": 1, "run.out_dir": str(tmp_path)}))
    with pytest.raises(UserError, match="different model shape"):
        T.fit(tiny_config(tiny_data, **{"model.d_model": 64}), resume=tmp_path / "last.pt")


def test_device_cuda_without_gpu_is_a_user_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UserError, match="no CUDA"):
        T.resolve_device("cuda")


def test_resume_on_another_dataset_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    from tests.train.conftest import make_tiny

    other = make_tiny(tmp_path / "other", seed=1)
    T.fit(tiny_config(tiny_data, **{"optim.epochs": 1, "run.out_dir": str(tmp_path / "ck")}))
    with pytest.raises(UserError, match="another dataset"):
        T.fit(tiny_config(other), resume=tmp_path / "ck" / "last.pt")


def test_heads_not_dividing_width_is_one_clear_line(tiny_data: Path) -> None:
    with pytest.raises(UserError, match="divisible"):
        T.fit(tiny_config(tiny_data, **{"model.heads": 3}))


def test_checkpoint_hashes_are_the_files_and_best_pt_is_the_best_epochs_bytes(tiny_data: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from vlp_sweep.train.checkpoint import sha256_file

    real = T.evaluate

    def scripted(st: S.TrainState) -> T.Evaluation:  # epoch 2 is the best: later last.pt files must not touch it
        ev = real(st)
        ev.metrics["t2v_R1"] = {1: 10.0, 2: 50.0, 3: 20.0, 4: 30.0}[ev.epoch]
        return ev

    monkeypatch.setattr(T, "evaluate", scripted)
    hashes: dict[int, str] = {}
    copies: dict[int, bytes] = {}

    def keep(ev: T.Evaluation) -> None:
        assert ev.checkpoint is not None and ev.checkpoint_sha256 is not None
        assert sha256_file(ev.checkpoint) == ev.checkpoint_sha256  # hashed while written, not read back
        hashes[ev.epoch] = ev.checkpoint_sha256
        copies[ev.epoch] = ev.checkpoint.read_bytes()

    res = T.fit(tiny_config(tiny_data, **{"optim.epochs": 4, "run.out_dir": str(tmp_path)}), keep)
    assert res.best_checkpoint is not None
    best_epoch = res.best_checkpoint[0]
    assert best_epoch == 2
    assert sha256_file(tmp_path / "best.pt") == hashes[best_epoch]  # untouched by later epochs' last.pt
    assert (tmp_path / "best.pt").read_bytes() == copies[best_epoch]
    assert len(set(hashes.values())) == 4  # every epoch's checkpoint differs: the check could fail

"""The data a reused worker keeps between trials (data_cache.py): a later trial sees exactly what a fresh
load gives, whatever the trials before it did, and a dataset changed on disk is read again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.train.conftest import make_tiny, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import state as S
from vlp_sweep.train import trainer as T
from vlp_sweep.train.inputs import data_cache
from vlp_sweep.train.inputs.batch_plan import plan_frames
from vlp_sweep.train.inputs.packing import build_packed, padded_batch

# Trials as a sweep alternates them: dropout, every augmentation, fusion on and off, two frame budgets.
TRIALS = [
    {"model.dropout": 0.2, "aug.keypoint_noise": 0.05, "aug.speed": 0.2, "aug.frame_mask_prob": 0.2,
     "aug.joint_mask_prob": 0.2, "aug.rotation_deg": 10.0},
    {"model.dropout": 0.4, "data.use_siglip": False, "data.max_frames": 8},
    {"model.dropout": 0.2, "aug.keypoint_noise": 0.05, "aug.speed": 0.2, "aug.frame_mask_prob": 0.2,
     "aug.joint_mask_prob": 0.2, "aug.rotation_deg": 10.0},
]


def _fit(data: Path, over: dict[str, object], monkeypatch: pytest.MonkeyPatch
         ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """A trial's last metrics and final weights."""
    states: list[S.TrainState] = []
    setup = T.setup
    monkeypatch.setattr(T, "setup", lambda *a, **k: states.append(setup(*a, **k)) or states[-1])
    res = T.fit(tiny_config(data, **over))
    return res.last.metrics, {k: v.clone() for k, v in states[-1].model.state_dict().items()}


def _same(a: tuple[dict[str, float], dict[str, torch.Tensor]], b: tuple[dict[str, float], dict[str, torch.Tensor]]
          ) -> None:
    assert {k: v for k, v in a[0].items() if not k.endswith("_s")} == \
        {k: v for k, v in b[0].items() if not k.endswith("_s")}  # timings differ, numbers may not
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        assert torch.equal(a[1][k], b[1][k]), k


def test_trials_in_one_process_match_fresh_loads_bit_for_bit(tiny_data: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    fresh = []
    for over in TRIALS:
        data_cache.clear()
        fresh.append(_fit(tiny_data, over, monkeypatch))
    data_cache.clear()
    cached = [_fit(tiny_data, over, monkeypatch) for over in TRIALS]  # the 2nd and 3rd trials read the cache
    for f, c in zip(fresh, cached):
        _same(f, c)
    assert fresh[0][0] != fresh[1][0]  # the trials differ: equal results would prove nothing


def test_a_second_trial_reuses_the_loaded_splits(tiny_data: Path) -> None:
    data_cache.clear()
    a = S.setup(make_config(tiny_config(tiny_data)), None)
    b = S.setup(make_config(tiny_config(tiny_data, **{"data.max_frames": 8, "model.dropout": 0.3})), None)
    assert b.train is a.train and b.eval is a.eval
    c = S.setup(make_config(tiny_config(tiny_data, **{"data.use_siglip": False})), None)
    assert c.train is not a.train and c.train.siglip is None  # another input: its own entry


def test_a_model_that_writes_into_its_batch_changes_nothing_cached(tiny_data: Path) -> None:
    data_cache.clear()
    cfg = make_config(tiny_config(tiny_data))
    st = S.setup(cfg, None)
    before = {k: v.clone() for k, v in vars(st.train).items() if isinstance(v, torch.Tensor)}
    aug = make_config(TRIALS[2]).aug
    for rng in (None, np.random.default_rng(0)):  # evaluation batches (no augmentation) and training batches
        plan = plan_frames(np.arange(len(st.train)), st.train.length_host, cfg.data.max_frames, "crop",
                           aug if rng else None, rng)
        gen = torch.Generator().manual_seed(0) if rng else None
        packed = build_packed(st.train, plan, cfg.data, aug if rng else None, gen, cfg.data.max_text_len)
        padded = padded_batch(st.train, plan, aug if rng else None, gen)
        tensors = [*padded.values(), *(v for v in (*vars(packed).values(), *vars(packed.video).values(),
                                                   *vars(packed.text).values()) if isinstance(v, torch.Tensor))]
        for t in tensors:
            t.zero_() if t.dtype != torch.bool else t.fill_(False)
    after = S.setup(cfg, None)
    assert after.train is st.train
    for k, v in before.items():
        assert torch.equal(getattr(after.train, k), v), k


def test_a_dataset_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    data = make_tiny(tmp_path / "d", seed=0)
    data_cache.clear()
    first = S.setup(make_config(tiny_config(data)), None)
    shutil.rmtree(data)
    make_tiny(data, seed=1)  # same folder, other arrays and captions
    second = S.setup(make_config(tiny_config(data)), None)
    assert second.train is not first.train
    assert not torch.equal(second.train.kpts, first.train.kpts)  # type: ignore[arg-type]
    kp = np.load(data / "keypoints.npy", mmap_mode="r+")
    kp[0, 0, 0] += 1.0  # the same file edited: its modification time moves
    kp.flush()
    del kp
    third = S.setup(make_config(tiny_config(data)), None)
    assert not torch.equal(third.train.kpts, second.train.kpts)  # type: ignore[arg-type]


def test_another_dataset_replaces_the_cached_one(tiny_data: Path, tmp_path: Path) -> None:
    other = make_tiny(tmp_path / "other", seed=2)
    data_cache.clear()
    S.setup(make_config(tiny_config(tiny_data)), None)
    S.setup(make_config(tiny_config(other)), None)
    assert data_cache.packed(other) is data_cache.packed(other)
    assert len(data_cache.held()) == 2  # only the other dataset's train and eval splits are held


def test_a_missing_folder_is_still_one_clear_error(tmp_path: Path) -> None:
    from vlp_sweep.errors import UserError

    with pytest.raises(UserError, match="data folder not found"):
        data_cache.packed(tmp_path / "nope")


def test_no_more_than_two_input_combinations_are_held(tiny_data: Path) -> None:
    data_cache.clear()
    combos = [{}, {"data.use_siglip": False}, {"data.use_kpts": False}]  # 3 combinations x (train, eval)
    states = [S.setup(make_config(tiny_config(tiny_data, **c)), None) for c in combos]
    assert len(data_cache.held()) == data_cache.MAX_SPLITS == 4
    held = {id(s) for s in data_cache.held()}
    assert id(states[0].train) not in held and id(states[0].eval) not in held  # the least recently used went
    assert {id(states[2].train), id(states[2].eval), id(states[1].train), id(states[1].eval)} == held

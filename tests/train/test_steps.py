"""The training step reads nothing back from the device: no ``.item()``, ``.tolist()``, ``bool(tensor)``,
boolean-mask indexing or other host syncs per step, for the plain step, cached and naive accumulation,
a model of your own, with augmentation, dropout and the health checks on; the epoch reads its losses once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.train.conftest import cfg_for, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import state as S
from vlp_sweep.train import steps
from vlp_sweep.train.watch.health import HealthMonitor
from vlp_sweep.train.watch.health_config import HealthConfig
from vlp_sweep.train.watch.oom import OomRescue
from vlp_sweep.train.watch.syncs import SyncCounter

AUG = {"aug.speed": 0.2, "aug.keypoint_noise": 0.02, "aug.joint_mask_prob": 0.1, "aug.frame_mask_prob": 0.1,
       "aug.rotation_deg": 10.0, "model.dropout": 0.2}
SETTINGS = {"plain": {"optim.batch_size": 8}, "cached x3": {"optim.batch_size": 4, "optim.grad_accum": 3},
            "naive x3": {"optim.batch_size": 4, "optim.grad_accum": 3, "optim.accum_mode": "naive"}}


def _state(data: Path, **over: object) -> S.TrainState:
    st = S.setup(make_config(tiny_config(data, **AUG, **over)), None)
    st.oom = OomRescue(2, st.device)
    st.health = HealthMonitor(HealthConfig(), st.device, {"kpts": True, "siglip": True}, 2, st.oom)
    return st


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_step_reads_nothing_back_from_the_device(tiny_data: Path, setting: str) -> None:
    st = _state(tiny_data, **SETTINGS[setting])
    with SyncCounter() as counted:
        for batch in steps.epoch_batches(st, 0):
            assert st.health is not None
            st.health.observe(batch.packed if batch.packed is not None else batch.parts()[0], batch.micro)
            steps.train_step(st, batch)
    assert st.step >= 2  # several steps, so a per-step read would show
    assert counted.total == 0, counted.calls
    with SyncCounter() as epoch:
        steps.train_epoch(st)
    assert dict(epoch.calls) == {"tolist": 1}  # the epoch's mean losses, once


def test_a_model_of_your_own_under_gradcache_reads_nothing_back_either(user_module: str, tiny_data: Path) -> None:
    cfg = make_config(cfg_for(tiny_data, f"{user_module}:build", dropout=0.3) | {
        "optim.grad_accum": 3, "optim.accum_mode": "cached", "optim.batch_size": 6})
    st = S.setup(cfg, None)
    batch = next(steps.epoch_batches(st, 0))
    assert batch.micro_batches is not None and len(batch.micro_batches) == 3
    with SyncCounter() as counted:
        steps.train_step(st, batch)
    assert counted.total == 0, counted.calls


def test_the_counter_sees_what_would_stall_a_gpu() -> None:
    # The control: each of these is a read the counter must catch, or the tests above prove nothing.
    x = torch.arange(6.0)
    with SyncCounter() as c:
        x.sum().item()
        x.tolist()
        bool(x[0] > 1)
        _ = x[x > 2]
        x.nonzero()
        torch.repeat_interleave(x.long(), x.long())
    assert c.total == 6, c.calls
    with SyncCounter() as c:  # ... and not what keeps the host free
        _ = x[torch.tensor([1, 2])] * 2
        torch.repeat_interleave(x.long(), x.long(), output_size=15)
        _ = x.shape[0] + len(x)
    assert c.total == 0, c.calls

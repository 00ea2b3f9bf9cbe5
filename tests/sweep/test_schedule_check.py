"""What ASHA can see of the lr schedule: steps per epoch as the trainer counts them, rungs as Ray places them."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlp_sweep.config import make_config
from vlp_sweep.space import SweepSpec, check_data, load_space, parse_space
from vlp_sweep.space.schedule_check import rung_epochs, schedule_warnings, steps_per_epoch

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_TRAIN = 7096  # Phoenix-2014T's train split (../shared/data/phoenix14t)


@pytest.mark.parametrize("n", [3, 17, 160, 7096])
def test_steps_per_epoch_match_the_trainer(n: int) -> None:
    from vlp_sweep.errors import UserError
    from vlp_sweep.train.schedule import steps_per_epoch as trainer_steps

    for batch in (2, 7, 64, 256, 1500):
        for accum in (1, 2, 4):
            for workers in (1, 2):
                cfg = make_config({"optim.batch_size": batch, "optim.grad_accum": accum})
                try:
                    want = trainer_steps(n, cfg, workers)
                except UserError:  # the trainer refuses a split this small
                    want = 0
                assert steps_per_epoch(n, batch, accum, workers) == want, (n, batch, accum, workers)


@pytest.mark.parametrize(("grace", "rf", "max_t"), [(10, 3, 150), (2, 2, 6), (1, 2, 10), (3, 2.5, 40)])
def test_rungs_are_where_ray_puts_them(grace: int, rf: float, max_t: int) -> None:
    import math

    from ray.tune.schedulers.async_hyperband import _Bracket

    spec = parse_space({"name": "x", "base": {"optim.epochs": max_t},
                        "scheduler": {"type": "asha", "grace_period": grace, "reduction_factor": rf}})
    milestones = sorted(m for m, _ in _Bracket(grace, max_t, rf, 0)._rungs)
    want = [math.ceil(m) for m in milestones if math.ceil(m) < max_t]
    assert rung_epochs(spec.scheduler, max_t) == want
    assert rung_epochs(spec.scheduler, max_t, eval_every=4) == sorted({min(max_t, math.ceil(m / 4) * 4)
                                                                       for m in milestones} - {max_t})


def _phase1(**search: object) -> SweepSpec:
    data = load_space(ROOT / "search_spaces" / "phase1_options.yaml").to_dict()
    for key, entry in search.items():
        data["search"][key] = entry
        data["base"].pop(key, None)
    return parse_space(data)


def test_the_plans_warmup_and_cosine_are_hidden_from_asha_in_the_old_phase1() -> None:
    old = _phase1(**{"optim.warmup_steps": {"choice": [0, 500]}, "optim.schedule": {"choice": ["constant", "cosine"]}})
    warmup, cosine = schedule_warnings(old, [PHOENIX_TRAIN])
    assert warmup.startswith("search.optim.warmup_steps 500: the warmup lasts 83.3 epochs at 6 optimizer steps")
    assert "the lr is at 12% and 36% of its peak at the ASHA rungs at epochs 10 and 30" in warmup
    assert "keep the warmup under 60 steps" in warmup
    assert cosine.startswith("search.optim.schedule cosine: at the ASHA rungs at epochs 10 and 30 (of 150)")
    assert "to 99% and 91% of its peak" in cosine


def test_the_shipped_phase1_lets_every_schedule_knob_act() -> None:
    spec = load_space(ROOT / "search_spaces" / "phase1_options.yaml")
    assert schedule_warnings(spec, [PHOENIX_TRAIN]) == []
    # A warmup that does end before the first rung, a fixed cosine, or no ASHA: nothing to say.
    assert schedule_warnings(_phase1(**{"optim.warmup_steps": {"choice": [0, 59]}}), [PHOENIX_TRAIN]) == []
    late = schedule_warnings(_phase1(**{"optim.warmup_steps": {"choice": [0, 61]}}), [PHOENIX_TRAIN])
    assert len(late) == 1 and late[0].startswith("search.optim.warmup_steps 61: the warmup lasts 10.2 epochs")


def test_a_searched_batch_size_is_judged_at_its_fewest_steps() -> None:
    # 20 warmup steps: over by the first rung (epoch 2) at batch 32 (5 steps/epoch on 160 clips, 10 steps)
    # but not at batch 16 (10 steps/epoch, 20 steps).
    spec = parse_space({"name": "x", "base": {"optim.epochs": 8, "optim.warmup_steps": 20},
                        "search": {"optim.batch_size": {"choice": [16, 32]}},
                        "scheduler": {"type": "asha", "grace_period": 2, "reduction_factor": 2}})
    (line,) = schedule_warnings(spec, [160])
    assert line.startswith("base.optim.warmup_steps 20: the warmup lasts 4.0 epochs at 5 optimizer steps per "
                           "epoch (160 train clips, batch 32 x grad_accum 1)") and "50% and 100%" in line
    assert schedule_warnings(spec, [320]) == []  # twice the data: 10 steps per epoch at batch 32


def test_a_split_too_small_for_the_accumulation_is_refused() -> None:
    from vlp_sweep.errors import UserError

    spec = parse_space({"name": "x", "search": {"optim.grad_accum": {"choice": [1, 8]}},
                        "scheduler": {"type": "none"}})
    with pytest.raises(UserError, match=r"search\.optim\.grad_accum: 12 train clips are too few for batch 128 x "
                                        r"grad_accum 8"):
        schedule_warnings(spec, [12])


def test_validate_prints_the_warnings_from_the_data(tmp_path: Path, sweep_data: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from vlp_sweep.cli import main

    space = tmp_path / "s.yaml"
    space.write_text(f"base: {{data.path: {sweep_data}, optim.batch_size: 32, optim.epochs: 8}}\n"
                     "search:\n  optim.warmup_steps: {choice: [0, 40]}\n"
                     "scheduler: {type: asha, grace_period: 2, reduction_factor: 2}\n")
    found = check_data(load_space(space))
    assert len(found.warnings) == 1 and "search.optim.warmup_steps 40" in found.warnings[0]
    assert main(["validate", str(space)]) == 0
    out = capsys.readouterr().out
    assert "warning: search.optim.warmup_steps 40: the warmup lasts 8.0 epochs at 5 optimizer steps" in out
    # run says the same before it launches (a dry run starts nothing).
    assert main(["run", str(space), "--dry-run", "--runs-root", str(tmp_path / "runs")]) == 0
    assert "warning: search.optim.warmup_steps 40: the warmup lasts 8.0 epochs" in capsys.readouterr().err

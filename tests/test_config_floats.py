"""Float keys take every usual spelling of a float, from --set, a config file and a search space."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlp_sweep.cli import main
from vlp_sweep.cli.train_cmd import load_config_file
from vlp_sweep.config import make_config, parse_set
from vlp_sweep.errors import UserError
from vlp_sweep.yamlio import safe_load

# (as written, the float it means): YAML 1.1 reads the first six as strings.
SPELLINGS = [("3e-3", 3e-3), ("3E-3", 3e-3), ("1e-4", 1e-4), ("2e0", 2.0), ("1.5e-3", 1.5e-3),
             (".5e-3", 5e-4), ("3.0e-3", 3e-3), ("0.003", 3e-3), (".003", 3e-3), ("+0.003", 3e-3),
             ("1_0e-4", 1e-3), ("3", 3.0)]


@pytest.mark.parametrize(("raw", "value"), SPELLINGS)
def test_set_reads_every_float_spelling(raw: str, value: float) -> None:
    cfg = make_config(parse_set([f"optim.lr={raw}"]))
    assert isinstance(cfg.optim.lr, float)
    assert cfg.optim.lr == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(("raw", "value"), SPELLINGS)
def test_config_file_reads_every_float_spelling(tmp_path: Path, raw: str, value: float) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"optim:\n  lr: {raw}\nloss:\n  hcl_beta: {raw}\n")  # hcl_beta: a float key without a pair check
    cfg = make_config(load_config_file(str(path)))
    assert (cfg.optim.lr, cfg.loss.hcl_beta) == (pytest.approx(value), pytest.approx(value))


def test_quoted_float_is_a_float_for_a_float_key() -> None:
    assert make_config({"optim.lr": "3e-3", "loss.temperature": "0.05"}).optim.lr == pytest.approx(3e-3)
    assert make_config({"loss.temperature": "0.05"}).loss.temperature == pytest.approx(0.05)


def test_exponent_floats_stay_floats_and_other_scalars_keep_their_types() -> None:
    assert safe_load("[1e5, -2E-2, 7, true, abc, 1.0, '3e-3']") == [1e5, -0.02, 7, True, "abc", 1.0, "3e-3"]


@pytest.mark.parametrize("raw", ["abc", "3e", "1e-3x", "nan", "inf", ".inf"])
def test_not_a_finite_float_is_one_clear_error(raw: str) -> None:
    with pytest.raises(UserError, match=r"^optim\.lr: "):
        make_config(parse_set([f"optim.lr={raw}"]))


def test_int_key_does_not_take_a_float() -> None:
    with pytest.raises(UserError, match="optim.epochs: expected int, got float"):
        make_config(parse_set(["optim.epochs=1e1"]))


def test_train_command_accepts_an_exponent_lr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `train` parses --set before touching data: a missing dataset proves the lr was accepted.
    code = main(["train", "--set", "optim.lr=3e-3", "--set", f"data.path={tmp_path / 'none'}",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "optim.lr" not in err
    assert "none" in err

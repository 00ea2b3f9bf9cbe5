"""A model factory of your own in the search space: model.options.NAME searched in the native and
W&B formats, checked against the factory's signature before Ray starts, and the example's space."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.sweep.conftest import REPO, write_space
from vlp_sweep.cli import main
from vlp_sweep.errors import UserError
from vlp_sweep.space import load_space, parse_space

EXAMPLE = REPO / "examples" / "custom_model"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A folder holding a copy of the example's model (imported as ``gru_model`` through code:)."""
    d = tmp_path / "mymodels"
    d.mkdir()
    shutil.copy(EXAMPLE / "gru_model.py", d / "gru_model.py")
    return d


def space(**over: Any) -> dict[str, Any]:
    base = {"data.path": "data/x", "model.factory": "gru_model:build", "model.options.word_dim": 32}
    out: dict[str, Any] = {"name": "mine", "code": ["mymodels"], "base": base,
                           "search": {"model.options.hidden": {"choice": [32, 64]},
                                      "model.options.dropout": {"uniform": [0.0, 0.3]},
                                      "optim.lr": {"loguniform": [1e-4, 1e-3]}},
                           "scheduler": {"type": "none"}, "num_samples": 4}
    out.update(over)
    return out


def test_options_are_searched_with_dotted_keys_and_reach_the_trial(model_dir: Path) -> None:
    spec = load_space(write_space(model_dir.parent / "space.yaml", space()))
    assert spec.code == (str(model_dir),)
    assert {p.key for p in spec.search} >= {"model.options.hidden", "model.options.dropout"}
    cfg = spec.trial_config({"model.options.hidden": 64, "model.options.dropout": 0.2, "optim.lr": 3e-4})
    assert cfg.model.factory == "gru_model:build"
    assert cfg.model.options == {"word_dim": 32, "hidden": 64, "dropout": 0.2}
    assert spec.fixed("model.options.layers") == 1  # the signature's default
    again = parse_space(spec.to_dict())  # what a trial parses from its context
    assert again == spec and again.fingerprint() == spec.fingerprint()


def test_nested_options_and_the_wandb_format(model_dir: Path) -> None:
    nested = space(base={"data.path": "data/x", "model": {"factory": "gru_model:build", "options": {"layers": 2}}},
                   search={"model": {"options": {"hidden": {"choice": [32, 64]}}}})
    spec = load_space(write_space(model_dir.parent / "nested.yaml", nested))
    assert dict(spec.base)["model.options.layers"] == 2 and spec.search[0].key == "model.options.hidden"
    wandb = {"method": "random", "metric": {"name": "t2v_R1", "goal": "maximize"}, "code": ["mymodels"],
             "parameters": {"data.path": {"value": "data/x"}, "model.factory": {"value": "gru_model:build"},
                            "model.options.hidden": {"values": [32, 64]},
                            "model": {"parameters": {"options": {"parameters": {
                                "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.3}}}}}}}
    spec = load_space(write_space(model_dir.parent / "wandb.yaml", wandb))
    assert spec.format == "wandb"
    assert {p.key for p in spec.search} == {"model.options.hidden", "model.options.dropout"}


@pytest.mark.parametrize(("over", "message"), [
    ({"search": {"model.options.hiden": {"choice": [32]}}},
     r"search.model.options.hiden.*takes no option 'hiden' \(did you mean 'hidden'\?\)"),
    ({"search": {"model.options.hidden": {"choice": [32, "big"]}}},
     r"search.model.options.hidden.*rejects 'big': expected int"),
    ({"search": {"model.options.hidden": {"uniform": [32, 64]}}},
     r"search.model.options.hidden.*is an integer key: use int: \[low, high\]"),
    ({"search": {"model.d_model": {"choice": [32, 64]}}}, r"an option of the built-in model"),
    ({"search": {"model.factory": {"choice": ["gru_model:build"]}}}, r"one model per sweep"),
    ({"base": {"model.factory": "gru_model"}}, r"expected 'package.module:function'"),
    ({"base": {"model.factory": "nowhere_mod:build"}}, r"cannot import module 'nowhere_mod'"),
    ({"base": {"model.factory": "gru_model:build", "model.options.layers": "two"}},
     r"base.model.options.layers.*expected int"),
    ({"code": ["not_there"]}, r"code.*folder not found"),
])
def test_bad_model_input_is_one_line_before_ray_starts(model_dir: Path, over: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError, match=message) as e:
        load_space(write_space(model_dir.parent / "bad.yaml", space(**over)))
    assert "\n" not in str(e.value)


def test_an_option_without_default_must_be_given(model_dir: Path) -> None:
    (model_dir / "strict_model.py").write_text("def build(dims, width: int):\n    return None\n")
    with pytest.raises(UserError, match=r"model.options.width: .*needs it \(no default\): set it in base or search"):
        load_space(write_space(model_dir.parent / "s.yaml", space(base={"model.factory": "strict_model:build"},
                                                                    search={})))
    ok = space(base={"model.factory": "strict_model:build"}, search={"model.options.width": {"choice": [8, 16]}})
    assert load_space(write_space(model_dir.parent / "s.yaml", ok)).search[0].key == "model.options.width"
    sys.modules.pop("strict_model", None)


def test_validate_reports_a_bad_option_with_exit_2(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_space(model_dir.parent / "v.yaml", space(search={"model.options.hiden": {"choice": [32]}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "did you mean 'hidden'" in err and len(err.splitlines()) == 1


def test_the_examples_space_validates() -> None:
    spec = load_space(EXAMPLE / "space.yaml")
    assert dict(spec.base)["model.factory"] == "gru_model:build"
    assert any(p.key.startswith("model.options.") for p in spec.search)
    assert any(not p.key.startswith("model.") for p in spec.search)  # trainer keys too


def test_validate_builds_the_model_and_runs_a_batch_before_any_trial(
        model_dir: Path, sweep_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_space(model_dir.parent / "g.yaml", space(base={"data.path": str(sweep_data),
                                                               "model.factory": "gru_model:build"}))
    assert main(["validate", str(good)]) == 0
    assert "model gru_model:build: " in capsys.readouterr().out  # parameters, embeddings [4, 128]
    (model_dir / "flat_model.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.w = nn.Linear(1, 1)\n"
        "    def forward(self, b):\n        n = len(b['tokens'])\n"
        "        return {'video': torch.zeros(n, 3), 'text': torch.zeros(n, 3)}\n"
        "def build(dims):\n    return M()\n"
        "def broken(dims):\n    raise RuntimeError('no such layer')\n"
        "class N(M):\n"
        "    def forward(self, b):\n        x = torch.full((len(b['tokens']), 128), float('nan'))\n"
        "        return {'video': x, 'text': x}\n"
        "def nan(dims):\n    return N()\n")
    for fn, message in (("build", r"returned 'video' of shape \[4, 3\]; expected \[4, 128\]"),
                        ("broken", r"model.factory 'flat_model:broken' raised RuntimeError: no such layer"),
                        ("nan", r"returned non-finite \(NaN or inf\) 'video' embeddings for 4 training clips")):
        bad = write_space(model_dir.parent / "b.yaml", space(base={"data.path": str(sweep_data),
                                                                  "model.factory": f"flat_model:{fn}"}, search={}))
        assert main(["validate", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.search(message, err), err
    sys.modules.pop("flat_model", None)


def test_a_literal_option_error_lists_the_allowed_values(model_dir: Path) -> None:
    (model_dir / "cell_model.py").write_text(
        "from typing import Literal\n\n\ndef build(dims, cell: Literal['gru', 'lstm'] = 'gru'):\n    return None\n")
    for over in ({"base": {"model.factory": "cell_model:build", "model.options.cell": "rnn"}, "search": {}},
                 {"base": {"model.factory": "cell_model:build"},
                  "search": {"model.options.cell": {"choice": ["gru", "rnn"]}}}):
        with pytest.raises(UserError, match=r"model.options.cell.*one of 'gru', 'lstm'") as e:
            load_space(write_space(model_dir.parent / "s.yaml", space(**over)))
        assert "\n" not in str(e.value)
    sys.modules.pop("cell_model", None)

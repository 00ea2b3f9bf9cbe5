"""Precomputed text features: `data import --text-features DIR` (matched by id, dims checked) and the
built-in text tower that projects them instead of tokenising."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.test_import import _array_corpus
from tests.train.conftest import make_tiny, tiny_config
from vlp_sweep.cli import main
from vlp_sweep.data.packed import load_packed, write_packed
from vlp_sweep.errors import UserError
from vlp_sweep.train.trainer import fit


def _corpus(tmp: Path, n: int = 6) -> tuple[Path, Path, Path]:
    arrays, _ = _array_corpus(tmp, n)
    caps = tmp / "captions.csv"
    pd.DataFrame([(f"clip{i}", "train", f"text {i}") for i in range(n)], columns=["id", "split", "text"]).to_csv(
        caps, index=False)
    feats = tmp / "feats"
    feats.mkdir()
    for i in range(n):
        np.save(feats / f"clip{i}.npy", np.full((1, 5) if i % 2 else (5,), i, np.float32))
    return arrays, caps, feats


def _import(tmp: Path, arrays: Path, caps: Path, feats: Path) -> int:
    return main(["data", "import", "--out", str(tmp / "out"), "--poses", str(arrays), "--captions", str(caps),
                 "--array-layout", "openpose", "--fps", "25", "--text-features", str(feats), "--no-progress",
                 "--workers", "1"])


def test_import_writes_one_row_per_clip_in_manifest_order(tmp_path: Path) -> None:
    arrays, caps, feats = _corpus(tmp_path)
    assert _import(tmp_path, arrays, caps, feats) == 0
    ds = load_packed(tmp_path / "out")
    assert ds.text_features is not None and ds.text_feature_dim == 5
    assert ds.meta["text_feature_dim"] == 5
    for row, clip_id in enumerate(ds.manifest["id"]):  # row i = clip i's own file, [D] and [1, D] alike
        assert (ds.text_features[row] == int(clip_id[4:])).all()


@pytest.mark.parametrize(("breakage", "message"), [
    ("missing", r"no <id>.npy .* for 1 of 6 clips \(clip3\): every clip needs one"),
    ("width", r"clip3.npy has 4 values, .*clip0.npy has 5"),
    ("shape", r"clip3.npy: expected text features of shape \[D\] or \[1, D\]"),
])
def test_bad_text_features_are_one_line_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         breakage: str, message: str) -> None:
    arrays, caps, feats = _corpus(tmp_path)
    if breakage == "missing":
        (feats / "clip3.npy").unlink()
    else:
        np.save(feats / "clip3.npy", np.zeros(4 if breakage == "width" else (2, 5), np.float32))
    assert _import(tmp_path, arrays, caps, feats) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_packed_rows_must_match_the_manifest(tmp_path: Path) -> None:
    data = make_tiny(tmp_path / "d", n_train=4, n_dev=2)
    np.save(data / "text_features.npy", np.zeros((5, 3), np.float16))
    with pytest.raises(UserError, match=r"text_features.npy: shape \(5, 3\) does not match 6 clips"):
        load_packed(data)


def test_the_builtin_text_tower_projects_precomputed_features(tmp_path: Path) -> None:
    """Features that identify each caption: the projection tower learns to retrieve with them alone."""
    src = make_tiny(tmp_path / "src")
    ds = load_packed(src)
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(len(ds.manifest), 12)).astype(np.float16)
    data = write_packed(tmp_path / "feat", ds.manifest, np.asarray(ds.keypoints), np.asarray(ds.confidence),
                        None, {k: v for k, v in ds.meta.items() if k in ("layout", "fps")}, text_features=feats)
    cfg = tiny_config(data, **{"data.use_text_features": True, "data.use_siglip": False, "data.eval_split": "train",
                               "optim.batch_size": 24, "optim.epochs": 40, "run.eval_every": 40,
                               "run.out_dir": str(tmp_path / "ckpt")})
    res = fit(cfg)
    assert res.last.metrics["t2v_R1"] >= 75.0
    from vlp_sweep.train.evaluate import evaluate_checkpoint

    ev = evaluate_checkpoint(tmp_path / "ckpt" / "last.pt", device="cpu")
    assert "text_proj.1.weight" in {k.removeprefix("net.") for k in ev.checkpoint["model"]}
    assert not any(".tok." in k for k in ev.checkpoint["model"])  # no token tower built
    assert ev.result.metrics["t2v_R1"] == pytest.approx(res.last.metrics["t2v_R1"])
    with pytest.raises(UserError, match="data.use_text_features is true but the dataset has no text_features.npy"):
        fit(tiny_config(src, **{"data.use_text_features": True}))

"""The packed format: round trip, and every kind of bad input as one clear UserError (CLI: exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vlp_sweep.cli import main
from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import load_packed, pack_clips, write_packed
from vlp_sweep.errors import UserError

LENGTHS = (4, 6, 5)


def _clips(n_points: int = 50) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    return [{"id": f"c{i}", "split": "train" if i < 2 else "dev", "text": f"sentence {i}",
             "keypoints": rng.uniform(0, 1000, (n, n_points, 2)), "confidence": np.ones((n, n_points)),
             "siglip": rng.normal(size=(n, 8)), "gloss": "A B", "signer": "S00"} for i, n in enumerate(LENGTHS)]


def _write(out: Path, clips: list[dict[str, object]] | None = None, **kw: object) -> Path:
    return write_packed(out, *pack_clips(clips or _clips()), {"layout": synthetic_layout().to_meta(), "fps": 25},
                        **kw)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    clips = _clips()
    ds = load_packed(_write(tmp_path / "d", clips))
    m = ds.manifest
    assert m["offset"].tolist() == [0, 4, 10] and m["n_frames"].tolist() == list(LENGTHS)
    assert m["gloss"].tolist() == ["A B"] * 3 and m["signer"].tolist() == ["S00"] * 3
    for i, c in enumerate(clips):
        rows = slice(m["offset"][i], m["offset"][i] + m["n_frames"][i])
        assert np.array_equal(ds.keypoints[rows], np.asarray(c["keypoints"], np.float16))
        assert ds.siglip is not None and np.array_equal(ds.siglip[rows], np.asarray(c["siglip"], np.float16))
    assert ds.meta["n_clips"] == 3 and ds.meta["n_frames"] == 15 and ds.meta["siglip_dim"] == 8
    assert len(ds.meta["content_hash"]) == 64


def _manifest(col_change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def corrupt(root: Path) -> None:
        col_change(pd.read_parquet(root / "manifest.parquet")).to_parquet(root / "manifest.parquet", index=False)
    return corrupt


def _keypoint(value: float) -> Callable[[Path], None]:
    def corrupt(root: Path) -> None:
        kp = np.load(root / "keypoints.npy")
        kp[7, 3, 1] = value
        np.save(root / "keypoints.npy", kp)
    return corrupt


def _not_parquet(root: Path) -> None:
    (root / "manifest.parquet").write_text("id,split,text\nc0,train,hello\n")


def _with(**cols: list[Any]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        for k, v in cols.items():
            df[k] = v
        return df
    return change


BAD = {  # name -> (corruption, words the message must contain)
    "manifest missing a column": (_manifest(lambda df: df.drop(columns=["text"])), ("missing column", "text")),
    "nan keypoints": (_keypoint(float("nan")), ("keypoints.npy", "NaN or inf")),
    "inf keypoints": (_keypoint(float("inf")), ("keypoints.npy", "NaN or inf")),
    "offsets past the array": (_manifest(_with(offset=[0, 4, 12])), ("'c2'", "past the end")),
    "zero-length clip": (_manifest(_with(n_frames=[4, 0, 5])), ("'c1'", "zero frames")),
    "duplicate ids": (_manifest(_with(id=["c0", "c1", "c0"])), ("duplicate clip id", "'c0'")),
    "not a parquet manifest": (_not_parquet, ("manifest.parquet", "not a readable Parquet")),
    "missing keypoints file": (lambda root: (root / "keypoints.npy").unlink(), ("missing keypoints.npy",)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt, words = BAD[case]
    root = _write(tmp_path / "d")
    corrupt(root)
    with pytest.raises(UserError) as e:
        load_packed(root)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    assert main(["data", "info", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words[-1] in err


def test_missing_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UserError, match="data folder not found"):
        load_packed(tmp_path / "nope")
    assert main(["data", "info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data folder not found" in err


def test_write_packed_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    clips = _clips()
    clips[1]["keypoints"] = np.full((6, 50, 2), np.nan)
    with pytest.raises(UserError, match="NaN or inf"):
        _write(tmp_path / "d", clips)
    assert list(tmp_path.iterdir()) == []


def test_write_packed_failure_keeps_the_old_dataset(tmp_path: Path) -> None:
    root = _write(tmp_path / "d")
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    clips = _clips()
    clips[0]["keypoints"] = np.full((4, 50, 2), np.inf)
    with pytest.raises(UserError):
        _write(root, clips, overwrite=True)
    with pytest.raises(UserError, match="exists"):
        _write(root)
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_pack_clips_needs_clips() -> None:
    with pytest.raises(UserError, match="no clips"):
        pack_clips([])

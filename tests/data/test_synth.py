"""`vlp-sweep data synth`: determinism, format, the generative model's promises, corpus mode, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vlp_sweep import __version__
from vlp_sweep.cli import main
from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import load_packed
from vlp_sweep.data.synth import generate, make_params, synthesize
from vlp_sweep.data.synth.glosses import make_bank
from vlp_sweep.data.synth.language import BuiltinLexicon, sign_order, text_of
from vlp_sweep.errors import UserError

PHOENIX = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "phoenix14t" / "corpus.csv"
SMALL: dict[str, Any] = {"train": 40, "dev": 10, "test": 10}


def _hash(path: Path) -> str:
    return str(json.loads((path / "meta.json").read_text())["content_hash"])


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", seed=3, **SMALL)
    b = synthesize(tmp_path / "b", seed=3, **SMALL)
    c = synthesize(tmp_path / "c", seed=4, **SMALL)
    assert _hash(a) == _hash(b) != _hash(c)
    for name in ("keypoints.npy", "confidence.npy", "siglip.npy", "manifest.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "meta.json").read_text() == (b / "meta.json").read_text()


def test_format_shapes_dtypes_meta(synth_data: Path) -> None:
    ds = load_packed(synth_data)
    m = ds.manifest
    assert ds.keypoints.dtype == ds.confidence.dtype == np.float16
    assert ds.siglip is not None and ds.siglip.dtype == np.float16
    assert ds.keypoints.shape == (m["n_frames"].sum(), 50, 2)
    assert ds.confidence.shape == (len(ds.keypoints), 50) and ds.siglip.shape == (len(ds.keypoints), 32)
    assert m["split"].value_counts().to_dict() == {"train": 200, "dev": 50, "test": 50}
    assert {"gloss", "signer"} <= set(m.columns) and m["id"].is_unique
    assert (m["gloss"].str.count(" ") >= 1).all() and (m["text"].str.len() > 0).all()
    assert ds.meta["layout"] == synthetic_layout().to_meta()
    assert ds.meta["fps"] == 25.0
    prov = ds.meta["provenance"]
    assert prov["source"] == "synthetic" and prov["version"] == __version__
    assert prov["params"]["seed"] == 0 and prov["params"]["train"] == 200 and prov["params"]["lexicon"] == 150


def test_points_are_pixels_and_missing_points_are_zero(synth_data: Path) -> None:
    ds = load_packed(synth_data)
    kp, conf = np.asarray(ds.keypoints, np.float32), np.asarray(ds.confidence, np.float32)
    present = conf > 0
    assert (conf[present] > 0.5).all() and (conf <= 1).all()
    assert (kp[~present] == 0).all()
    assert present[:, :8].all()  # body points are always found
    xy = kp[present]
    assert np.percentile(xy, 1) > 0 and np.percentile(xy, 99) < 1000  # a 1000 x 1000 pixel frame
    sh = kp[:, 2] - kp[:, 3]  # shoulder width is the scale the trainer normalises by
    assert 100 < np.median(np.linalg.norm(sh, axis=1)) < 350


def _hand_missing(ds_path: Path) -> tuple[float, float]:
    """Share of frames whose dominant / other hand is missing (left-handers use the left hand)."""
    ds = load_packed(ds_path)
    groups = ds.meta["layout"]["groups"]
    lefties = set(ds.meta["provenance"]["left_handed_signers"])
    lefty = np.repeat(ds.manifest["signer"].isin(lefties).to_numpy(), ds.manifest["n_frames"].to_numpy())
    gone = {g: (np.asarray(ds.confidence)[:, groups[g]] == 0).all(1) for g in ("left_hand", "right_hand")}
    dom = np.where(lefty, gone["left_hand"], gone["right_hand"])
    other = np.where(lefty, gone["right_hand"], gone["left_hand"])
    return float(dom.mean()), float(other.mean())


def test_hands_go_missing_in_the_intended_shares_and_in_bursts(synth_data: Path) -> None:
    dom, other = _hand_missing(synth_data)
    assert 0.10 <= dom <= 0.20 and 0.30 <= other <= 0.50
    ds = load_packed(synth_data)
    gone = (np.asarray(ds.confidence)[:, ds.meta["layout"]["groups"]["right_hand"]] == 0).all(1)
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, gone.astype(int), 0]) != 0))[::2]
    assert runs.mean() > 2.0  # bursts, not independent frames


def test_heldout_signers_never_in_train(synth_data: Path) -> None:
    m = load_packed(synth_data).manifest
    train = set(m.loc[m["split"] == "train", "signer"])
    evals = set(m.loc[m["split"] != "train", "signer"])
    assert train.isdisjoint(evals) and len(evals) <= 3 and len(train) >= 6


def test_lengths_have_the_median_and_a_long_tail(synth_data: Path) -> None:
    n = load_packed(synth_data).manifest["n_frames"]
    assert 50 <= n.median() <= 70
    assert n.min() >= 16 and n.max() > 2 * n.median() and (n > 120).mean() > 0.03


def test_sentences_repeat_sometimes(synth_data: Path) -> None:
    m = load_packed(synth_data).manifest
    train = m[m["split"] == "train"]
    assert 0 < train["text"].duplicated().sum() < 0.2 * len(train)


def test_no_siglip_when_dim_zero(tmp_path: Path) -> None:
    out = synthesize(tmp_path / "d", siglip_dim=0, **SMALL)
    assert not (out / "siglip.npy").exists()
    ds = load_packed(out)
    assert ds.siglip is None and ds.meta["siglip_dim"] == 0


def _clip_means(m: pd.DataFrame, sig: np.ndarray) -> np.ndarray:
    return np.add.reduceat(sig.astype(np.float64), m["offset"].to_numpy()) / m["n_frames"].to_numpy()[:, None]


def test_siglip_carries_the_glosses_and_the_signer() -> None:
    m, _, _, sig, _ = generate(siglip_noise=0.0, siglip_appearance=0.0, repeat=0.3, train=120, dev=0, test=0)
    assert sig is not None
    v = _clip_means(m, sig)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    same = m["text"].to_numpy()[:, None] == m["text"].to_numpy()[None, :]
    np.fill_diagonal(same, False)
    cos = v @ v.T
    assert same.any() and cos[same].mean() > cos[~same].mean() + 0.3  # same sentence, similar features
    # Without the gloss signal, all that is left is the signer's appearance: constant per signer.
    m, _, _, sig, _ = generate(siglip_noise=0.0, siglip_signal=0.0, **SMALL)
    assert sig is not None
    for _, rows in m.groupby("signer"):
        frames = np.concatenate([np.arange(o, o + n) for o, n in zip(rows["offset"], rows["n_frames"])])
        assert (sig[frames] == sig[frames[0]]).all()


def test_gloss_motion_depends_on_its_name_only() -> None:
    a = make_bank(["HAUS", "REGEN"], seed=1)
    b = make_bank(["SONNE", "REGEN", "WIND", "HAUS"], seed=1)
    for field in ("loc", "amp", "curl0", "two", "dur", "emb"):
        assert np.array_equal(getattr(a, field)[0], getattr(b, field)[3]), field
    c = make_bank(["HAUS"], seed=2)
    assert not np.array_equal(a.loc[0], c.loc[0])


def test_word_order_differs_from_gloss_order() -> None:
    lex = BuiltinLexicon(names=["GESTERN", "HAUS", "GROSS", "KAUFEN"], words=["yesterday", "house", "big", "buy"],
                         pos=["T", "N", "A", "V"], article=["", "la", "", ""])
    signs = sign_order(np.array([3, 1, 2, 0]), lex.pos)
    assert [lex.names[g] for g in signs] == ["GESTERN", "HAUS", "GROSS", "KAUFEN"]  # time first, verb last
    assert text_of(signs, lex) == "yesterday buy la big house"  # verb second, adjective before noun


def test_bad_parameters_are_user_errors() -> None:
    with pytest.raises(UserError, match="did you mean 'signers'"):
        make_params(singers=3)
    with pytest.raises(UserError, match="heldout_signers"):
        make_params(signers=3, heldout_signers=3)
    with pytest.raises(UserError, match="missing_dominant"):
        make_params(missing_dominant=1.5)


@pytest.mark.skipif(not PHOENIX.is_file(), reason=f"Phoenix-2014T corpus CSV not found at {PHOENIX}")
def test_corpus_gives_texts_glosses_lengths_and_splits(tmp_path: Path) -> None:
    out = synthesize(tmp_path / "ph", corpus=str(PHOENIX), train=30, dev=10, test=10, siglip_dim=8)
    ds = load_packed(out)
    m = ds.manifest
    csv = pd.read_csv(PHOENIX, keep_default_na=False)
    want = pd.concat([csv[(csv["split"] == s) & (csv["gloss"] != "")].head(k)
                      for s, k in (("train", 30), ("dev", 10), ("test", 10))], ignore_index=True)
    assert m["id"].tolist() == want["name"].tolist()
    assert m["text"].tolist() == want["text"].tolist()
    assert m["gloss"].tolist() == want["gloss"].str.split().str.join(" ").tolist()
    assert m["n_frames"].tolist() == want["n_frames"].tolist()
    assert m["split"].tolist() == want["split"].tolist()
    assert ds.meta["provenance"]["params"]["corpus"] == str(PHOENIX)
    assert set(m.loc[m["split"] == "train", "signer"]).isdisjoint(m.loc[m["split"] != "train", "signer"])


@pytest.mark.parametrize(("content", "message"), [
    ("name,split,text\na,train,hello\n", "missing column.*n_frames"),
    ("name,split,n_frames,gloss,text\na,train,12,A B,hi\nb,train,x,A,ho\n", "line 3: n_frames.*'x'"),
    ("name,split,n_frames,gloss,text\na,train,12,A B,hi\na,dev,10,A,ho\n", "duplicate clip name 'a'"),
    ("name,split,n_frames,gloss,text\na,valid,12,A B,hi\n", "no rows with split"),
])
def test_bad_corpus_is_a_user_error(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(UserError, match=message):
        generate(corpus=str(bad))
    with pytest.raises(UserError, match="corpus file not found"):
        generate(corpus=str(tmp_path / "absent.csv"))


def test_cli_writes_and_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--train", "20", "--dev", "5", "--test", "5", "--seed", "7"]
    assert main(args) == 0
    assert "30 clips" in capsys.readouterr().out
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(args[:-1] + ["8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli"]  # no temporary folder left behind
    assert main(args[:-1] + ["8", "--overwrite"]) == 0
    assert load_packed(out).meta["provenance"]["params"]["seed"] == 8


def test_cli_bad_option_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--heldout-signers", "12"]) == 2
    assert "heldout_signers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

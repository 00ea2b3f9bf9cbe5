"""`vlp-sweep data import`: real .pose files, Phoenix / How2Sign / plain captions, arrays, SigLIP, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pose_format import Pose

from vlp_sweep.cli import build_parser, main
from vlp_sweep.data.importers import ImportOptions, import_dataset, read_captions
from vlp_sweep.data.importers.resample import resample
from vlp_sweep.data.layout import Layout
from vlp_sweep.data.packed import load_packed
from vlp_sweep.errors import UserError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
POSES = SHARED / "pose"
PHOENIX_STEM = "phoenix14t_25October_2010_Monday_tagesschau-17"
# file -> (points, kept coordinate channels, group sizes, shoulder point names)
AUTSL = "autsl_signer0_sample1000"
MP_SHOULDERS = ("POSE_LANDMARKS/LEFT_SHOULDER", "POSE_LANDMARKS/RIGHT_SHOULDER")
HOLISTIC_GROUPS = {"body": 33, "face": 468, "left_hand": 21, "right_hand": 21}
EXPECTED = {
    PHOENIX_STEM: (543, 3, HOLISTIC_GROUPS, MP_SHOULDERS),
    "mediapipe": (178, 3, {"body": 8, "face": 128, "left_hand": 21, "right_hand": 21}, MP_SHOULDERS),
    "openpose": (137, 2, {"body": 25, "face": 70, "left_hand": 21, "right_hand": 21},
                 ("pose_keypoints_2d/LShoulder", "pose_keypoints_2d/RShoulder")),
    AUTSL: (543, 3, HOLISTIC_GROUPS, MP_SHOULDERS),  # XYZK in the file: the Kinect depth K is not kept
}

needs_shared = pytest.mark.skipif(not POSES.is_dir(), reason=f"shared test data not found at {SHARED}")


def _plain(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    pd.DataFrame(rows, columns=["id", "split", "text"]).to_csv(path, index=False)
    return path


def _import(tmp: Path, poses: list[Path], captions: list[Path], name: str = "out", **kw: object) -> Path:
    out = tmp / name
    import_dataset(ImportOptions(out=out, poses=tuple(poses), captions=tuple(captions), workers=2, **kw))  # type: ignore[arg-type]
    return out


def _pose_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    pose = Pose.read(path.read_bytes())
    return np.ma.getdata(pose.body.data)[:, 0], np.asarray(pose.body.confidence)[:, 0], float(pose.body.fps)


# ---------------------------------------------------------------- every real .pose file


@needs_shared
@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_each_shared_pose_file(tmp_path: Path, stem: str) -> None:
    pose_file = POSES / f"{stem}.pose"
    out = _import(tmp_path, [pose_file], [_plain(tmp_path / "c.csv", [(stem, "train", "a sentence")])])
    ds = load_packed(out)
    data, conf, fps = _pose_arrays(pose_file)
    points, dims, groups, shoulders = EXPECTED[stem]
    assert ds.keypoints.shape == (len(data), points, dims)
    assert ds.meta["fps"] == fps and ds.meta["source"] == "import"
    layout = Layout.from_meta(ds.meta["layout"])
    assert layout.name.endswith(f"-all-{points}")
    assert {g: len(ix) for g, ix in layout.groups.items()} == groups
    assert layout.shoulders is not None
    assert (layout.names[layout.shoulders[0]], layout.names[layout.shoulders[1]]) == shoulders
    missing = conf == 0
    np.testing.assert_array_equal(np.asarray(ds.confidence) == 0, missing)  # mask from confidence
    assert missing.any() and not missing.all()
    kp = np.asarray(ds.keypoints, dtype=np.float32)
    assert (kp[missing] == 0).all()  # missing points stored as 0, like the synthetic corpus
    np.testing.assert_allclose(kp[~missing], data[..., :dims][~missing], rtol=1e-3, atol=0.07)  # raw, float16
    assert ds.manifest.loc[0, "id"] == stem and ds.manifest.loc[0, "text"] == "a sentence"


@needs_shared
def test_phoenix_left_hand_missing_half_the_frames(tmp_path: Path) -> None:
    out = _import(tmp_path, [POSES / f"{PHOENIX_STEM}.pose"],
                  [_plain(tmp_path / "c.csv", [(PHOENIX_STEM, "test", "x")])], preset="reduced")
    ds = load_packed(out)
    left = list(Layout.from_meta(ds.meta["layout"]).groups["left_hand"])
    absent = (np.asarray(ds.confidence)[:, left] == 0).all(1).mean()
    assert 0.3 < absent < 0.8


@needs_shared
def test_presets_select_by_name(tmp_path: Path) -> None:
    caps = _plain(tmp_path / "c.csv", [(s, "train", "x") for s in EXPECTED])
    reduced = load_packed(_import(tmp_path, [POSES / f"{PHOENIX_STEM}.pose"], [caps], "r", preset="reduced"))
    small = load_packed(_import(tmp_path, [POSES / "mediapipe.pose"], [caps], "m"))
    # the 543-point file reduced by name gives exactly the points of the already reduced file
    assert reduced.meta["layout"]["names"] == small.meta["layout"]["names"]
    hb = Layout.from_meta(load_packed(_import(tmp_path, [POSES / f"{AUTSL}.pose"], [caps], "h",
                                              preset="hands-body")).meta["layout"])
    assert len(hb.names) == 50 and "face" not in hb.groups and hb.shoulders is not None
    op = Layout.from_meta(load_packed(_import(tmp_path, [POSES / "openpose.pose"], [caps], "o",
                                              preset="reduced")).meta["layout"])
    assert len(op.names) == 111 and len(op.groups["face"]) == 59 and len(op.groups["body"]) == 10
    assert op.names[op.shoulders[0]].endswith("LShoulder")  # type: ignore[index]
    assert not any("Knee" in n or "FN_" in n or "FP_" in n for n in op.names)


@needs_shared
def test_dims_and_resampling(tmp_path: Path) -> None:
    caps = _plain(tmp_path / "c.csv", [(AUTSL, "train", "x"), (PHOENIX_STEM, "dev", "y")])
    four = load_packed(_import(tmp_path, [POSES / f"{AUTSL}.pose"], [caps], "k", dims=4))
    assert four.dims == 4 and four.meta["channels"] == ["X", "Y", "Z", "K"]
    files = [POSES / f"{AUTSL}.pose", POSES / f"{PHOENIX_STEM}.pose"]  # 30 and 25 fps
    both = load_packed(_import(tmp_path, files, [caps], "both", target_fps=12.5))
    assert both.meta["fps"] == 12.5
    assert both.manifest.set_index("id")["n_frames"].to_dict() == {AUTSL: 18, PHOENIX_STEM: 43}


# ---------------------------------------------------------------- Phoenix-2014T captions


@needs_shared
def test_phoenix_clip_gets_its_sentence(tmp_path: Path) -> None:
    corpus = pd.read_csv(SHARED / "phoenix14t" / "corpus.csv", dtype=str, keep_default_na=False)
    test = corpus[corpus["split"] == "test"]
    phx = pd.DataFrame({"name": test["name"], "video": test["name"] + "/1/*.png", "start": "-1", "end": "-1",
                        "speaker": "Signer01", "orth": test["gloss"], "translation": test["text"]})
    caps = tmp_path / "PHOENIX-2014-T.test.corpus.csv"
    phx.to_csv(caps, sep="|", index=False)
    out = tmp_path / "out"
    assert main(["data", "import", "--out", str(out), "--poses", str(POSES), "--captions", str(caps),
                 "--id-pattern", "phoenix14t_(.+)", "--no-progress"]) == 0
    ds = load_packed(out)
    row = ds.manifest.iloc[0]
    want = test[test["name"] == PHOENIX_STEM.removeprefix("phoenix14t_")].iloc[0]
    assert len(ds.manifest) == 1 and row["id"] == want["name"] and row["split"] == "test"
    assert row["text"] == want["text"] and row["gloss"] == want["gloss"] and row["n_frames"] == 86
    reasons = pd.DataFrame(ds.meta["import"]["skipped"])["reason"].value_counts().to_dict()
    assert reasons == {"no pose file": len(test) - 1, "no caption": 3}  # every other clip accounted for


@needs_shared
def test_the_corpus_table_itself_is_read_as_captions(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["data", "import", "--out", str(out), "--poses", str(POSES), "--id-pattern", "phoenix14t_(.+)",
                 "--captions", str(SHARED / "phoenix14t" / "corpus.csv"), "--no-progress"]) == 0
    row = load_packed(out).manifest.iloc[0]
    corpus = pd.read_csv(SHARED / "phoenix14t" / "corpus.csv", dtype=str, keep_default_na=False)
    want = corpus[corpus["name"] == PHOENIX_STEM.removeprefix("phoenix14t_")].iloc[0]
    assert (row["id"], row["split"], row["text"], row["gloss"]) == (want["name"], "test", want["text"], want["gloss"])
    assert read_captions(SHARED / "phoenix14t" / "corpus.csv")[1] == "corpus"


# ---------------------------------------------------------------- arrays, How2Sign, plain, SigLIP


def test_caption_split_rules(tmp_path: Path) -> None:
    phx = tmp_path / "corpus.csv"  # no split word in the name
    phx.write_text("name|video|start|end|speaker|orth|translation\na|a/*.png|-1|-1|S1|A B|ein satz\n")
    with pytest.raises(UserError, match="pass --split"):
        read_captions(phx)
    df, fmt = read_captions(phx, split="dev")
    assert fmt == "phoenix" and df.to_dict("records") == [
        {"id": "a", "split": "dev", "text": "ein satz", "gloss": "A B", "signer": "S1"}]
    named = tmp_path / "PHOENIX-2014-T.train.corpus.csv"
    named.write_bytes(phx.read_bytes())
    assert read_captions(named)[0]["split"].tolist() == ["train"]
    with pytest.raises(UserError, match="none of the caption layouts"):
        read_captions(named, fmt="how2sign")


def test_unnamed_array_points_and_shoulders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        np.savez(tmp_path / "a" / f"c{i}.npz", keypoints=rng.normal(size=(6, 10, 3)), fps=30.0)
    caps = _plain(tmp_path / "c.csv", [("c0", "train", "x"), ("c1", "dev", "y")])
    opts = ImportOptions(out=tmp_path / "o", poses=(tmp_path / "a",), captions=(caps,), shoulders=(2, 3))
    result = import_dataset(opts)
    assert result.layout.name == "points-10" and result.layout.shoulders == (2, 3) and not result.notes
    assert load_packed(tmp_path / "o").meta["fps"] == 30.0
    bare = import_dataset(ImportOptions(out=tmp_path / "p", poses=(tmp_path / "a",), captions=(caps,)))
    assert bare.layout.shoulders is None and any("no shoulders" in n for n in bare.notes)
    with pytest.raises(UserError, match="needs named points"):
        import_dataset(ImportOptions(out=tmp_path / "q", poses=(tmp_path / "a",), captions=(caps,),
                                     preset="reduced"))
    assert not (tmp_path / "q").exists()


def _openpose_like(rng: np.random.Generator, t: int) -> np.ndarray:
    """[t, 137, 2] pixel coordinates with the shoulders (pose points 2 and 5) apart."""
    kp = rng.uniform(100, 400, size=(t, 137, 2)).astype(np.float32)
    kp[:, 2] = (200, 150)
    kp[:, 5] = (300, 150)
    return kp


def _array_corpus(tmp: Path, n: int, seed: int = 0, siglip_dim: int = 8) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    arrays, sig = tmp / "arrays", tmp / "siglip"
    arrays.mkdir(exist_ok=True)
    sig.mkdir(exist_ok=True)
    for i in range(n):
        t = 10 + i % 7
        kp = _openpose_like(rng, t)
        if i % 2:
            np.save(arrays / f"clip{i}.npy", kp)
        else:
            conf = rng.uniform(0.5, 1, (t, 137))
            np.savez(arrays / f"clip{i}.npz", keypoints=kp, confidence=conf, fps=25.0)
        np.save(sig / f"clip{i}.npy", rng.normal(size=(t, siglip_dim)).astype(np.float32))
    return arrays, sig


def test_how2sign_and_plain_captions_with_arrays_and_siglip(tmp_path: Path) -> None:
    arrays, sig = _array_corpus(tmp_path, 8)
    kp = np.load(arrays / "clip1.npy")
    kp[3, 40:61] = np.nan  # a hand lost in one frame
    kp[4, 95:116] = 0.0  # and filled with zeros in the next, as exporters do
    np.save(arrays / "clip1.npy", kp)
    np.save(sig / "clip3.npy", np.zeros((2, 8), np.float32))  # frame count does not match clip3's keypoints
    sentences = ['He said "hi", then left.', "two", "three", "four"]
    h2s = pd.DataFrame({"VIDEO_ID": "v", "VIDEO_NAME": "v-rgb_front",
                        "SENTENCE_ID": [f"s{i}" for i in range(4)],
                        "SENTENCE_NAME": [f"clip{i}" for i in range(4)], "START_REALIGNED": "0.0",
                        "END_REALIGNED": "1.0", "SENTENCE": sentences})
    h2s_path = tmp_path / "how2sign_realigned_val.csv"
    h2s.to_csv(h2s_path, sep="\t", index=False)  # CSV-quotes the first sentence
    with open(h2s_path, "a") as f:  # and a row the way the released files have them: quotes as they are
        f.write('v\tv-rgb_front\ts4\tclip9\t0.0\t1.0\t"Quoted" words and 8" of snow\n')
    np.save(arrays / "clip9.npy", np.load(arrays / "clip1.npy"))
    np.save(sig / "clip9.npy", np.load(sig / "clip1.npy"))
    plain = _plain(tmp_path / "captions.csv", [(f"clip{i}", "train", f"sentence {i}") for i in range(4, 9)])
    # the poses folder given is the parent of the SigLIP folder: SigLIP files are not read as poses
    out = _import(tmp_path, [tmp_path], [h2s_path, plain], siglip=sig, fps=25.0)
    ds = load_packed(out)
    m = ds.manifest.set_index("id")
    assert sorted(m.index) == ["clip0", "clip1", "clip2", "clip4", "clip5", "clip6", "clip7", "clip9"]
    assert m.loc["clip0", "split"] == "val" and m.loc["clip0", "text"] == 'He said "hi", then left.'
    assert m.loc["clip9", "text"] == '"Quoted" words and 8" of snow'
    assert m.loc["clip4", "split"] == "train"
    assert ds.meta["layout"]["name"] == "openpose-all-137" and ds.siglip_dim == 8 and ds.dims == 2
    skipped = {s["id"]: s for s in ds.meta["import"]["skipped"]}
    assert skipped["clip3"]["reason"] == "frame-count mismatch with SigLIP features"
    assert skipped["clip3"]["detail"] == "keypoints 13 frames, SigLIP 2"
    assert skipped["clip8"]["reason"] == "no pose file"
    clip1 = ds.manifest[ds.manifest["id"] == "clip1"].iloc[0]
    off, n = int(clip1["offset"]), int(clip1["n_frames"])
    conf = np.asarray(ds.confidence[off:off + n])
    assert (conf[3, 40:61] == 0).all() and (conf[4, 95:116] == 0).all() and conf[3, :40].all()
    assert ds.siglip is not None
    np.testing.assert_allclose(np.asarray(ds.siglip[off:off + 2], np.float32),
                               np.load(sig / "clip1.npy")[:2], atol=2e-3)


def test_mismatch_reported_by_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays, sig = _array_corpus(tmp_path, 3)
    np.save(sig / "clip2.npy", np.zeros((1, 8), np.float32))
    caps = _plain(tmp_path / "c.csv", [(f"clip{i}", "train", "x") for i in range(3)])
    rc = main(["data", "import", "--out", str(tmp_path / "o"), "--poses", str(arrays), "--captions",
               str(caps), "--siglip", str(sig), "--fps", "25", "--no-progress"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "frame-count mismatch with SigLIP features: 1 (clip2 [keypoints 12 frames, SigLIP 1])" in text
    assert "imported 2 clips" in text


def test_resample_keeps_missing_points_missing() -> None:
    kp = np.arange(4 * 2 * 2, dtype=np.float32).reshape(4, 2, 2)
    conf = np.ones((4, 2), np.float32)
    conf[1:3, 1] = 0
    sig = np.arange(4, dtype=np.float32)[:, None]
    out, c, s = resample(kp, conf, sig, 10.0, 20.0)
    assert len(out) == 8
    np.testing.assert_allclose(out[1, 0], (kp[0, 0] + kp[1, 0]) / 2)  # both present: linear
    assert c[2, 1] == 0 and c[3, 1] == 0  # frames next to a gap take the nearest frame's missing point
    assert s is not None and s[:, 0].tolist() == [0, 1, 1, 2, 2, 3, 3, 3]  # nearest frame's features
    down, _, _ = resample(kp, conf, None, 10.0, 5.0)
    assert len(down) == 2


# ---------------------------------------------------------------- bad input: one line, exit 2, no output


def _fails(capsys: pytest.CaptureFixture[str], out: Path, argv: list[str], needle: str) -> None:
    rc = main(["data", "import", "--out", str(out), "--no-progress", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp folder left


def test_bad_captions_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays, _ = _array_corpus(tmp_path, 2)
    bad = tmp_path / "bad.csv"
    bad.write_text("clip,sentence\nclip0,hello\n")
    _fails(capsys, tmp_path / "o", ["--poses", str(arrays), "--captions", str(bad)],
           "none of the caption layouts")


@needs_shared
def test_truncated_pose_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (POSES / "openpose.pose").read_bytes()
    (tmp_path / "cut.pose").write_bytes(data[: len(data) // 2])
    caps = _plain(tmp_path / "c.csv", [("cut", "train", "x")])
    _fails(capsys, tmp_path / "o", ["--poses", str(tmp_path / "cut.pose"), "--captions", str(caps)],
           "not a readable .pose file")


def test_not_a_pose_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.pose").write_bytes(b"this is not a pose file at all")
    caps = _plain(tmp_path / "c.csv", [("x", "train", "x")])
    _fails(capsys, tmp_path / "o", ["--poses", str(tmp_path / "x.pose"), "--captions", str(caps)],
           "not a readable .pose file")


def test_inconsistent_point_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    np.save(tmp_path / "a" / "c0.npy", np.ones((5, 50, 2), np.float32))
    np.save(tmp_path / "a" / "c1.npy", np.ones((5, 40, 2), np.float32))
    caps = _plain(tmp_path / "c.csv", [("c0", "train", "x"), ("c1", "train", "y")])
    _fails(capsys, tmp_path / "o", ["--poses", str(tmp_path / "a"), "--captions", str(caps), "--fps", "25"],
           "different point layouts")


def test_no_clip_left(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays, _ = _array_corpus(tmp_path, 2)
    caps = _plain(tmp_path / "c.csv", [("other", "train", "x")])
    _fails(capsys, tmp_path / "o", ["--poses", str(arrays), "--captions", str(caps), "--fps", "25"],
           "no clip left after matching")


def test_output_exists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays, _ = _array_corpus(tmp_path, 2)
    caps = _plain(tmp_path / "c.csv", [("clip0", "train", "x"), ("clip1", "train", "y")])
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["data", "import", "--out", str(out), "--poses", str(arrays), "--captions", str(caps),
            "--fps", "25", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "output folder exists" in err and err.count("\n") == 1
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*argv, "--overwrite"]) == 0
    assert load_packed(out).meta["n_clips"] == 2 and not (out / "keep.txt").exists()


# ---------------------------------------------------------------- the result in the other commands


def _train_dev(tmp: Path) -> Path:
    arrays, sig = _array_corpus(tmp, 24)
    rows = [(f"clip{i}", "dev" if i % 4 == 0 else "train", f"sentence number {i} {'abc'[i % 3]}")
            for i in range(24)]
    return _import(tmp, [arrays], [_plain(tmp / "c.csv", rows)], siglip=sig, fps=25.0)


def test_data_info_reads_the_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _train_dev(tmp_path)
    try:
        args = build_parser().parse_args(["data", "info", str(out)])
    except UserError:
        pytest.skip("data info not available")
    if not hasattr(args, "func"):
        pytest.skip("data info not available")
    assert main(["data", "info", str(out)]) == 0
    assert "24" in capsys.readouterr().out or json.loads((out / "meta.json").read_text())["n_clips"] == 24


def test_short_training_run_on_an_import(tmp_path: Path) -> None:
    trainer = pytest.importorskip("vlp_sweep.train.trainer", reason="trainer not available")
    from vlp_sweep.config import make_config

    out = _train_dev(tmp_path)
    cfg = make_config({"data.path": str(out), "data.use_siglip": True, "data.max_frames": 16,
                       "optim.epochs": 2, "optim.batch_size": 8, "model.d_model": 32, "model.embed_dim": 16,
                       "model.heads": 2, "model.video_layers": 1, "model.text_layers": 1, "run.device": "cpu",
                       "run.num_threads": 2})
    result = trainer.fit(cfg)
    assert len(result.history) == 2
    assert all(math.isfinite(v) for v in result.last.metrics.values())

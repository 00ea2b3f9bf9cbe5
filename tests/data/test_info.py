"""`vlp-sweep data info`: every number checked on a hand-built dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vlp_sweep.cli import main
from vlp_sweep.data.info import dataset_info, format_info
from vlp_sweep.data.layout import Layout
from vlp_sweep.data.packed import pack_clips, write_packed

# (split, text, n_frames); 3 points: body (0) and a hand (1, 2)
CLIPS = [("train", "a", 10), ("train", "b", 20), ("train", "a", 30), ("train", "c", 40), ("train", "a", 200),
         ("dev", "a", 130), ("dev", "x", 160), ("dev", "y", 190)]
LAYOUT = Layout("tiny-3", ("nose", "wrist", "tip"), {"body": (0,), "hand": (1, 2)}, None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips = []
    for i, (split, text, n) in enumerate(CLIPS):
        conf = np.ones((n, 3))
        conf[: n // 2, 1:] = 0  # the hand is missing in the first half of every clip
        conf[0, 0] = 0 if i == 0 else 1  # and the body in one frame of the first clip
        clips.append({"id": f"c{i}", "split": split, "text": text, "keypoints": np.full((n, 3, 2), 5.0),
                      "confidence": conf, "signer": f"s{i % 2}"})
    return write_packed(tmp_path_factory.mktemp("info") / "tiny", *pack_clips(clips),
                        {"layout": LAYOUT.to_meta(), "fps": 30})


def test_numbers(tiny: Path) -> None:
    info = dataset_info(tiny)
    assert info["n_clips"] == 8 and info["n_frames"] == 780
    assert info["dims"] == {"points": 3, "coords": 2, "siglip": 0}
    assert info["layout"] == "tiny-3" and info["fps"] == 30
    assert info["content_hash"] == json.loads((tiny / "meta.json").read_text())["content_hash"]
    assert list(info["splits"]) == ["train", "dev"]
    train, dev, both = info["splits"]["train"], info["splits"]["dev"], info["all"]
    # numpy's linear percentiles of [10, 20, 30, 40, 200]: p5 at rank 0.2, p95 at rank 3.8
    assert train["length"] == {"p5": 12.0, "p25": 20.0, "p50": 30.0, "p75": 40.0, "p95": 168.0, "max": 200.0}
    assert dev["length"] == {"p5": 133.0, "p25": 145.0, "p50": 160.0, "p75": 175.0, "p95": 187.0, "max": 190.0}
    assert train["over"] == {"120": 0.2, "150": 0.2, "180": 0.2}
    assert dev["over"] == pytest.approx({"120": 1.0, "150": 2 / 3, "180": 1 / 3})
    assert both["over"] == pytest.approx({"120": 0.5, "150": 3 / 8, "180": 0.25})
    assert (train["clips"], train["frames"], dev["clips"], dev["frames"]) == (5, 300, 3, 480)
    assert (train["duplicate_text_clips"], train["distinct_texts"]) == (3, 3)
    assert (dev["duplicate_text_clips"], dev["distinct_texts"]) == (0, 3)
    assert (both["duplicate_text_clips"], both["distinct_texts"]) == (4, 5)
    assert train["signers"] == dev["signers"] == 2


def test_missing_rates(tiny: Path) -> None:
    miss = dataset_info(tiny)["missing"]
    hand = sum(n // 2 for _, _, n in CLIPS) / 780  # every clip's length is even: exactly half
    assert miss["groups"] == pytest.approx({"body": 1 / 780, "hand": hand})
    assert miss["all"] == pytest.approx((1 + 2 * 390) / (3 * 780))


def test_table_and_json_from_the_cli(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", str(tiny), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == dataset_info(tiny)
    assert main(["data", "info", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert out == format_info(dataset_info(tiny))
    assert "tiny-3" in out and "hand 50.0%" in out
    train_row = next(line for line in out.splitlines() if line.startswith("train"))
    assert train_row.split() == ["train", "5", "300", "12.0", "20.0", "30.0", "40.0", "168.0", "200",
                                 "20.0%", "20.0%", "20.0%", "3", "3", "2"]


def test_synthetic_default_corpus_summary(synth_data: Path) -> None:
    info = dataset_info(synth_data)
    assert info["layout"] == "synthetic-50" and info["dims"] == {"points": 50, "coords": 2, "siglip": 32}
    assert info["missing"]["groups"]["body"] == 0 and info["missing"]["groups"]["left_hand"] > 0.2

"""Batches: duplicate captions as the text tower sees them; plans packed without padding and padded alike;
augmentation drawn per process from one permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tests.train.conftest import make_tiny, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import pack_clips, write_packed
from vlp_sweep.train import state as S
from vlp_sweep.train import steps
from vlp_sweep.train.distributed import DistContext
from vlp_sweep.train.inputs.batch_plan import epoch_rng, plan_frames
from vlp_sweep.train.inputs.packing import PackedBatch, build_packed, make_batch, padded_batch
from vlp_sweep.train.inputs.tokenizer import sequence_ids
from vlp_sweep.train.metrics import retrieval_metrics

TRAIN = ["Red sun rises", "red SUN rises",  # case only: one input
         "cold, wind", "cold , wind",  # spacing around punctuation: one input
         "north south rain snow sun", "north south rain snow wind",  # differ after max_text_len (4) tokens
         "cold wind",  # the comma is a token: not a duplicate of "cold, wind"
         "red sun rises!"]  # nor is this one of "red sun rises"
DEV = ["Rain snow", "rain snow",  # case only
       "sun rain zebra", "sun rain yak",  # a word the training vocabulary lacks: both <unk>
       "cold", "wind"]
SAME_TRAIN = [(0, 1), (2, 3), (4, 5)]
DIFFERENT_TRAIN = [(0, 7), (2, 6), (0, 2), (4, 6)]


def _state(tmp_path: Path) -> S.TrainState:
    data = make_tiny(tmp_path / "d", n_train=len(TRAIN), n_dev=len(DEV), texts=TRAIN + DEV)
    return S.setup(make_config(tiny_config(data, **{"data.max_text_len": 4})), None)


def test_duplicates_are_decided_on_the_token_sequence(tmp_path: Path) -> None:
    st = _state(tmp_path)
    ids = st.train.text_ids.tolist()
    for i, j in SAME_TRAIN:
        assert ids[i] == ids[j], (TRAIN[i], TRAIN[j])
    for i, j in DIFFERENT_TRAIN:
        assert ids[i] != ids[j], (TRAIN[i], TRAIN[j])
    dev = st.eval.text_ids.tolist()
    assert dev[0] == dev[1] and dev[2] == dev[3] and len({dev[0], dev[2], dev[4], dev[5]}) == 4
    # Equal ids exactly where the model's inputs are equal.
    for split in (st.train, st.eval):
        same_tokens = (split.tokens[:, None] == split.tokens[None]).all(-1)
        assert torch.equal(same_tokens, split.text_ids[:, None] == split.text_ids[None])


def test_training_negatives_and_eval_groups_use_those_ids(tmp_path: Path) -> None:
    st = _state(tmp_path)
    batch = make_batch(st.train, torch.arange(len(TRAIN)), st.cfg.data)
    assert torch.equal(batch["text_ids"], st.train.text_ids)  # what the loss masks negatives with
    # A model that sees "Rain snow" and "rain snow" as one input cannot tell their clips apart: with the
    # groups, either clip answers either caption (pessimistic ties would otherwise rank one of them 2nd).
    text = torch.eye(len(DEV))[[0, 0, 2, 2, 4, 5]]
    video = text.clone()
    res = retrieval_metrics(text=text, video=video, groups=st.eval.text_ids, ties="pessimistic")
    assert res.metrics["t2v_R1"] == 100.0 and res.metrics["v2t_R1"] == 100.0


def test_sequence_ids_of_an_empty_split() -> None:
    assert sequence_ids(torch.zeros(0, 4, dtype=torch.long)).shape == (0,)


# ---------------------------------------------------------------- augmentation per process

AUG = {"aug.keypoint_noise": 0.05, "aug.rotation_deg": 10.0, "aug.speed": 0.2, "aug.joint_mask_prob": 0.1,
       "data.max_frames": 12, "optim.batch_size": 4, "optim.grad_accum": 2, "data.use_siglip": False}


def _identical_clips(out: Path, n: int = 16) -> Path:
    """Every training clip has the same poses and length (captions differ): equal draws give equal inputs."""
    k = len(synthetic_layout().names)
    kp = np.random.default_rng(0).normal(size=(20, k, 2)) * 0.5
    kp[:, 2], kp[:, 3] = [-0.5, 0.0], [0.5, 0.0]
    clips = [{"id": f"c{i:02d}", "split": "train" if i < n else "dev", "text": f"caption w{i}", "keypoints": kp,
              "confidence": np.ones((20, k))} for i in range(n + 4)]
    df, kps, conf, sig = pack_clips(clips)
    return write_packed(out, df, kps, conf, sig, {"layout": synthetic_layout().to_meta(), "fps": 25})


def _rank_batches(data: Path, rank: int, epoch: int = 0) -> list[list[PackedBatch]]:
    st = S.setup(make_config(tiny_config(data, **AUG)), None, DistContext(rank, 2))
    return [b.parts() for b in steps.epoch_batches(st, epoch)]  # type: ignore[misc]


def test_each_process_augments_its_shard_independently_from_one_permutation(tmp_path: Path) -> None:
    data = _identical_clips(tmp_path / "d")
    r0, r1 = _rank_batches(data, 0), _rank_batches(data, 1)
    # One permutation on both: the two shards of each global micro-batch are its halves, in order.
    perm = torch.from_numpy(epoch_rng(0, 0)[0].permutation(16))
    got = [torch.cat([a.text_ids, b.text_ids]) for s0, s1 in zip(r0, r1) for a, b in zip(s0, s1)]
    st = S.setup(make_config(tiny_config(data, **AUG)), None)
    assert torch.equal(torch.cat(got), st.train.text_ids[perm])
    # Same clip data, same position in the shard: the augmentation must still differ between processes.
    for s0, s1 in zip(r0, r1):
        for a, b in zip(s0, s1):
            assert a.kpts is not None and b.kpts is not None
            assert a.kpts.shape != b.kpts.shape or not torch.equal(a.kpts, b.kpts)
    # ... and is reproducible from (seed, epoch, rank), so a resumed run continues exactly.
    again = _rank_batches(data, 1)
    assert all(torch.equal(a.kpts, b.kpts) for s, t in zip(r1, again) for a, b in zip(s, t))  # type: ignore[arg-type]
    later = _rank_batches(data, 1, epoch=1)[0][0].kpts
    assert later is not None and (later.shape != r1[0][0].kpts.shape or not torch.equal(later, r1[0][0].kpts))


# ---------------------------------------------------------------- plans: packed and padded alike


def test_a_plan_lists_every_kept_frame_once_in_slot_order_and_no_padding() -> None:
    rng = np.random.default_rng(0)
    length = rng.integers(1, 60, size=40)
    aug = make_config({"aug.speed": 0.3, "aug.frame_mask_prob": 0.3}).aug
    plan = plan_frames(np.arange(40), length, 24, "crop", aug, rng)
    for i in range(40):
        slots = plan.slots[plan.cu[i]:plan.cu[i + 1]]
        rows = plan.rows[plan.cu[i]:plan.cu[i + 1]]
        assert len(slots) >= 1 and slots[0] == 0  # frame masking never drops a clip's first slot
        assert np.all(np.diff(slots) > 0) and slots[-1] < 24
        assert np.all((rows >= 0) & (rows < length[i]))
        assert np.all(np.diff(rows) >= 0)  # a window moves forward in time
    assert plan.cu[-1] < 40 * 24  # frames masked and short clips: fewer than the padded slots
    assert len(set(np.diff(plan.cu))) > 5  # several lengths: the property could break


def test_the_padded_view_holds_exactly_the_planned_frames(tmp_path: Path) -> None:
    st = _state(tmp_path)
    plan = plan_frames(np.arange(len(TRAIN)), st.train.length_host, 16, "crop", make_config(AUG).aug,
                       np.random.default_rng(1))
    packed = build_packed(st.train, plan, st.cfg.data, None, None, st.cfg.data.max_text_len)
    padded = padded_batch(st.train, plan, None, None)
    assert packed.kpts is not None
    assert torch.equal(padded["kpts"][padded["frame_mask"]], packed.kpts)  # the same frames, same order
    assert torch.equal(padded["tokens"][padded["token_mask"]], packed.tokens)
    assert torch.equal(padded["text_ids"], packed.text_ids)
    assert int(padded["frame_mask"].sum()) == len(packed.video_slots)


def test_a_clip_range_of_a_packed_batch_equals_the_batch_of_those_clips(tmp_path: Path) -> None:
    st = _state(tmp_path)
    plan = plan_frames(np.arange(len(TRAIN)), st.train.length_host, 16, "crop")
    whole = build_packed(st.train, plan, st.cfg.data, None, None, 4)
    part = build_packed(st.train, plan.select(2, 6), st.cfg.data, None, None, 4)
    got = whole.select(2, 6)
    for a, b in ((got.kpts, part.kpts), (got.tokens, part.tokens), (got.video.cu, part.video.cu),
                 (got.video.seg, part.video.seg), (got.text.cu, part.text.cu), (got.video_slots, part.video_slots)):
        assert a is not None and b is not None and torch.equal(a, b)

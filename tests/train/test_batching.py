"""Duplicate captions are decided on the token sequence the text tower receives, in training and evaluation."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.train.conftest import make_tiny, tiny_config
from vlp_sweep.config import make_config
from vlp_sweep.train import trainer as T
from vlp_sweep.train.batching import make_batch
from vlp_sweep.train.metrics import retrieval_metrics
from vlp_sweep.train.tokenizer import sequence_ids

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


def _state(tmp_path: Path) -> T._State:
    data = make_tiny(tmp_path / "d", n_train=len(TRAIN), n_dev=len(DEV), texts=TRAIN + DEV)
    return T._setup(make_config(tiny_config(data, **{"data.max_text_len": 4})), None)


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
    batch = make_batch(st.train, torch.arange(len(TRAIN)), st.cfg.data, st.cfg.aug, None)
    assert torch.equal(batch["text_ids"], st.train.text_ids)  # what the loss masks negatives with
    # A model that sees "Rain snow" and "rain snow" as one input cannot tell their clips apart: with the
    # groups, either clip answers either caption (pessimistic ties would otherwise rank one of them 2nd).
    text = torch.eye(len(DEV))[[0, 0, 2, 2, 4, 5]]
    video = text.clone()
    res = retrieval_metrics(text=text, video=video, groups=st.eval.text_ids, ties="pessimistic")
    assert res.metrics["t2v_R1"] == 100.0 and res.metrics["v2t_R1"] == 100.0


def test_sequence_ids_of_an_empty_split() -> None:
    assert sequence_ids(torch.zeros(0, 4, dtype=torch.long)).shape == (0,)

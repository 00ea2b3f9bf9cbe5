"""A word-level tokenizer built from the training captions (no download needed).

Ids: 0 = padding, 1 = unknown word; the vocabulary (a list of str) is stored in every checkpoint.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
PAD, UNK = "<pad>", "<unk>"


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class WordTokenizer:
    def __init__(self, vocab: Sequence[str]):
        if list(vocab[:2]) != [PAD, UNK]:
            raise ValueError("vocabulary must start with <pad>, <unk>")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1) -> WordTokenizer:
        counts = Counter(w for t in texts for w in words(t))
        kept = sorted(w for w, c in counts.items() if c >= min_freq)  # sorted: deterministic ids
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``[N, max_len]`` (int64, right-padded) and mask ``[N, max_len]`` (bool, True = token)."""
        ids = torch.zeros(len(texts), max_len, dtype=torch.long)
        for i, t in enumerate(texts):
            toks = [self.index.get(w, 1) for w in words(t)][:max_len] or [1]  # an empty caption is one <unk>
            ids[i, : len(toks)] = torch.tensor(toks)
        return ids, ids != 0


def sequence_ids(tokens: torch.Tensor) -> torch.Tensor:
    """``[N]`` int64 ids, equal exactly where rows of ``tokens [N, L]`` are equal.

    Duplicate captions are decided on what the text tower receives: captions that differ only in case,
    in spacing around punctuation, beyond ``max_text_len`` or in words unknown to the vocabulary are
    one input to the model, so they are kept out of each other's negatives and retrieve each other.
    """
    if len(tokens) == 0:
        return torch.zeros(0, dtype=torch.long, device=tokens.device)
    return torch.unique(tokens, dim=0, return_inverse=True)[1].long()

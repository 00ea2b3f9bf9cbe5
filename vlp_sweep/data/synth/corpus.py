"""What to render: the clips' splits, glosses, texts, lengths and signers, built in or from a corpus CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vlp_sweep.data.synth.glosses import GlossBank, make_bank
from vlp_sweep.data.synth.knobs import SPLITS, SynthParams
from vlp_sweep.data.synth.language import builtin_lexicon, builtin_sentences
from vlp_sweep.data.synth.signers import Signers
from vlp_sweep.data.synth.timeline import natural_lengths
from vlp_sweep.errors import UserError

CORPUS_COLUMNS = ("name", "split", "n_frames", "gloss", "text")


@dataclass
class Corpus:
    """What to render: the clips' splits, glosses, texts, lengths, signers, and the lexicon."""

    ids: list[str]
    split: np.ndarray
    seqs: list[np.ndarray]
    text: list[str]
    n_frames: np.ndarray
    signer: np.ndarray
    names: list[str]
    bank: GlossBank


def builtin_corpus(p: SynthParams, sg: Signers, rng: np.random.Generator) -> Corpus:
    lex = builtin_lexicon(p.lexicon, p.seed)
    bank = make_bank(lex.names, p.seed)
    split_l, seqs, texts = builtin_sentences(p, lex, rng)
    split = np.array(split_l, dtype=object)
    signer = assign_signers(split, p, rng)
    natural = natural_lengths(seqs, bank, sg.speed[signer])
    n_frames = np.zeros(len(seqs), dtype=np.int64)
    for s in SPLITS:  # every split gets the same length distribution
        m = split == s
        if m.any():
            n_frames[m] = _length_targets(natural[m], p, rng)
    ids = [f"{s}-{i:05d}" for s, i in zip(split, _index_within(split))]
    return Corpus(ids, split, seqs, texts, n_frames, signer, lex.names, bank)


def _index_within(split: np.ndarray) -> np.ndarray:
    out = np.zeros(len(split), dtype=np.int64)
    for s in SPLITS:
        m = split == s
        out[m] = np.arange(m.sum())
    return out


def corpus_from_csv(p: SynthParams, rng: np.random.Generator) -> Corpus:
    df = read_corpus(p.corpus, p.split_sizes())
    tokens = [str(g).split() for g in df["gloss"]]
    names = sorted({t for ts in tokens for t in ts})
    index = {n: i for i, n in enumerate(names)}
    seqs = [np.array([index[t] for t in ts], dtype=np.int64) for ts in tokens]
    split = df["split"].to_numpy(dtype=object)
    ids = df["name"].astype(str).tolist()
    dup = df["name"][df["name"].duplicated()]
    if len(dup):
        raise UserError(f"{p.corpus}: duplicate clip name '{dup.iloc[0]}'")
    return Corpus(ids, split, seqs, df["text"].astype(str).tolist(), df["n_frames"].to_numpy(np.int64),
                  assign_signers(split, p, rng), names, make_bank(names, p.seed))


def _length_targets(natural: np.ndarray, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Log-normal clip lengths, handed out by rank of the (noisy) natural length of each sentence.

    The marginal is exactly the log-normal; longer sentences get longer clips, so time per gloss
    stays plausible while the signing speed still varies from clip to clip.
    """
    draw = np.exp(np.log(p.median_frames) + p.length_spread * rng.standard_normal(len(natural)))
    draw = np.sort(np.clip(np.round(draw), p.min_frames, p.max_frames).astype(np.int64))
    rank = np.argsort(np.argsort(np.log(natural) + 0.25 * rng.standard_normal(len(natural)), kind="stable"))
    return draw[rank]


def read_corpus(path: str, sizes: dict[str, int]) -> pd.DataFrame:
    """Rows of a corpus CSV (name,split,n_frames,gloss,text), capped per split; glossless rows dropped."""
    f = Path(path)
    if not f.is_file():
        raise UserError(f"corpus file not found: {f}")
    try:
        df = pd.read_csv(f, keep_default_na=False, dtype=str)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"{f}: not a readable CSV ({e})") from None
    missing = [c for c in CORPUS_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{f}: corpus is missing column(s) {', '.join(missing)} "
                        f"(need {','.join(CORPUS_COLUMNS)})")
    n = pd.to_numeric(df["n_frames"], errors="coerce")
    bad = np.flatnonzero((n.isna() | (n < 1) | (n != n.round())).to_numpy())
    if len(bad):
        raise UserError(f"{f}: line {bad[0] + 2}: n_frames must be a positive integer, "
                        f"got '{df['n_frames'].iloc[bad[0]]}'")
    df = df.assign(n_frames=n.astype(np.int64))
    df = df[df["gloss"].str.strip() != ""]
    parts = [df[df["split"] == s] for s in SPLITS]
    parts = [d.head(sizes[s]) if sizes[s] else d for s, d in zip(SPLITS, parts)]
    out = pd.concat(parts, ignore_index=True)
    if out.empty:
        raise UserError(f"{f}: no rows with split train/dev/test and a gloss sequence")
    return out


def assign_signers(split: np.ndarray, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Train clips from the first signers, dev/test clips only from the held-out ones."""
    n_seen = p.signers - p.heldout_signers
    seen = rng.integers(0, n_seen, len(split))
    held = n_seen + rng.integers(0, p.heldout_signers, len(split))
    return np.where(split == "train", seen, held)

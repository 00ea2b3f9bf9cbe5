"""A synthetic, sign-like corpus: pose keypoints (+ optional per-frame "SigLIP" features) vs sentences.

Generative model (all coordinates first in *body units*: origin at the shoulder centre, shoulder
width 1, y down, canonical right-handed signer whose dominant hand is on the image's left):

- Every gloss of the lexicon has its own motion, drawn from a hash of (seed, gloss name): a
  location in signing space (one of a few anchors + an offset), a path of low-frequency sinusoids
  plus a drift, a handshape (per-finger curl, maybe changing during the sign), a wrist rotation,
  a role for the other hand (resting, mirrored, alternating or a static base hand), a head nod and
  a base duration. Glosses share anchors and handshapes, so they are confusable in parts.
- A sentence is its gloss sequence: rest pose, glosses with smoothed transitions, rest pose,
  time-warped non-uniformly to the clip's length. Each occurrence of a gloss varies a little.
- Signers differ in size, position, rotation, shear and vertical stretch (camera angle, build),
  speed, signing-space size and offset, hand size, handedness (left-handers are mirrored) and
  camera quality; dev/test use held-out signers only.
- Hands go missing in bursts (more for fast motion and for a resting non-dominant hand).
- "SigLIP" features: a fixed random projection of the current gloss's visual embedding (what a
  frame shows: location, handshape and a gloss-specific mouthing component that the keypoints do
  not carry) + the signer's appearance vector (a nuisance) + noise.
- Texts: each gloss has a pseudo-word; word order differs from gloss order (signs put time first
  and verbs last, the text puts the verb second and adjectives before nouns, with articles).
  Or texts, gloss sequences, lengths and splits come from a corpus CSV.

Everything is vectorised over all frames of a chunk of clips, so Phoenix scale takes seconds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlp_sweep.data.layout import synthetic_layout
from vlp_sweep.data.packed import pack_clips, write_packed
from vlp_sweep.errors import UserError, did_you_mean

__all__ = ["SynthParams", "make_params", "generate", "synthesize"]

SPLITS = ("train", "dev", "test")
BUILTIN_SIZES = {"train": 800, "dev": 200, "test": 200}
CORPUS_COLUMNS = ("name", "split", "n_frames", "gloss", "text")


def _p(default: Any, help: str, *, lo: float | None = None, hi: float | None = None, type: type = int) -> Any:
    """A parameter with its help text, its range and its command-line type."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "type": type})


@dataclass(frozen=True)
class SynthParams:
    """Every knob of the generator; the defaults make a small corpus that trains on a CPU in minutes."""

    train: int | None = _p(None, "train clips (default 800); with --corpus a row cap, 0/unset = all", lo=0)
    dev: int | None = _p(None, "dev clips (default 200); with --corpus a row cap, 0/unset = all", lo=0)
    test: int | None = _p(None, "test clips (default 200); with --corpus a row cap, 0/unset = all", lo=0)
    signers: int = _p(12, "signers in all", lo=2)
    heldout_signers: int = _p(3, "signers seen only in dev/test (never in train)", lo=1)
    lexicon: int = _p(150, "glosses in the built-in lexicon (ignored with --corpus)", lo=2, hi=20000)
    siglip_dim: int = _p(32, "per-frame SigLIP feature size (0 = no siglip.npy)", lo=0)
    median_frames: int = _p(60, "median clip length of the built-in generator", lo=4)
    min_frames: int = _p(16, "shortest clip (built-in generator)", lo=2)
    max_frames: int = _p(400, "longest clip (built-in generator)", lo=2)
    length_spread: float = _p(0.55, "sigma of the log-normal clip length (long tail)", lo=0.0, hi=2.0,
                              type=float)
    fps: float = _p(25.0, "frames per second written to meta.json", lo=1.0, type=float)
    seed: int = _p(0, "seed: the same seed gives byte-identical files")
    corpus: str = _p("", "corpus CSV name,split,n_frames,gloss,text: real texts, glosses, lengths, splits",
                     type=str)
    noise: float = _p(1.0, "scale of the Gaussian keypoint jitter (0 = none)", lo=0.0, hi=20.0, type=float)
    variation: float = _p(1.0, "scale of the variation between two performances of a gloss", lo=0.0, hi=5.0,
                          type=float)
    signer_variation: float = _p(1.0, "scale of the differences between signers (size aside)", lo=0.0, hi=3.0,
                                 type=float)
    rotation_deg: float = _p(8.0, "signers' body rotation up to +-deg", lo=0.0, hi=45.0, type=float)
    left_handed: float = _p(0.2, "share of left-handed (mirrored) signers", lo=0.0, hi=1.0, type=float)
    missing_dominant: float = _p(0.15, "share of frames whose dominant hand is missing", lo=0.0, hi=0.95,
                                 type=float)
    missing_other: float = _p(0.4, "share of frames whose non-dominant hand is missing", lo=0.0, hi=0.95,
                              type=float)
    siglip_signal: float = _p(1.0, "scale of the gloss signal in the SigLIP features", lo=0.0, type=float)
    siglip_appearance: float = _p(0.5, "scale of the signer appearance nuisance in SigLIP features", lo=0.0,
                                  type=float)
    siglip_noise: float = _p(2.0, "std of the per-frame SigLIP noise", lo=0.0, type=float)
    zipf: float = _p(1.0, "Zipf exponent of gloss frequencies (0 = uniform)", lo=0.0, hi=4.0, type=float)
    repeat: float = _p(0.04, "share of built-in clips that reuse one of a few stock sentences (exact "
                       "duplicate texts, as in real corpora)", lo=0.0, hi=1.0, type=float)

    def __post_init__(self) -> None:
        for f in fields(self):
            v, lo, hi = getattr(self, f.name), f.metadata["lo"], f.metadata["hi"]
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if number and ((lo is not None and v < lo) or (hi is not None and v > hi)):
                bounds = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                raise UserError(f"synth parameter {f.name}={v} is outside {bounds}")
        if self.heldout_signers >= self.signers:
            raise UserError(f"heldout_signers ({self.heldout_signers}) must be below signers "
                            f"({self.signers}): train needs at least one signer")
        if self.min_frames > self.max_frames:
            raise UserError(f"min_frames ({self.min_frames}) must not exceed max_frames ({self.max_frames})")

    def split_sizes(self) -> dict[str, int]:
        """Clips per split; with a corpus 0 means all of that split's rows."""
        default = {s: 0 for s in SPLITS} if self.corpus else BUILTIN_SIZES
        return {s: default[s] if getattr(self, s) is None else int(getattr(self, s)) for s in SPLITS}


def make_params(**overrides: Any) -> SynthParams:
    """:class:`SynthParams` from keyword overrides; an unknown name is a :class:`UserError` naming it."""
    names = [f.name for f in fields(SynthParams)]
    for k in overrides:
        if k not in names:
            raise UserError(f"unknown synth parameter '{k}'{did_you_mean(k, names)}")
    return SynthParams(**overrides)


# ---------------------------------------------------------------------------------------------
# Geometry constants (body units, canonical right-handed signer, y down).

ANCHORS = np.array([  # dominant-hand wrist locations in signing space
    [-0.25, 0.70], [-0.05, 0.45], [-0.08, -0.30], [-0.10, -0.70], [-0.35, -0.45],
    [-0.60, 0.45], [-0.20, 1.00], [0.30, 0.15], [-0.40, -0.05]])
HANDSHAPES = np.array([  # curl of thumb, index, middle, ring, pinky (0 open, 1 closed) + spread
    [0.6, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.2, 1.0, 1.0, 1.0, 1.0, 0.0],
    [0.8, 1.0, 1.0, 1.0, 1.0, 0.0], [0.8, 0.0, 1.0, 1.0, 1.0, 0.2], [0.8, 0.0, 0.0, 1.0, 1.0, 0.8],
    [0.0, 1.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0, 0.6], [0.4, 0.5, 0.5, 0.5, 0.5, 0.2],
    [0.6, 0.75, 0.75, 0.75, 0.75, 0.0], [0.8, 0.0, 0.0, 0.0, 1.0, 0.7], [0.8, 1.0, 1.0, 1.0, 0.0, 0.3]])
RELAXED = np.array([0.3, 0.35, 0.4, 0.45, 0.5, 0.1])
REST_XY = np.array([-0.42, 1.1])  # dominant hand at rest; the other hand rests at the mirror image
BODY_XY = np.array([[0, -0.62], [0, -0.08], [0.5, 0], [-0.5, 0], [0.75, 0.6], [-0.75, 0.6],
                    [0.32, 1.5], [-0.32, 1.5]])  # SYNTH_BODY order; elbows are replaced by IK
UPPER_ARM, FOREARM = 0.62, 0.6
PALM = np.array([0.19, 0.19, 0.18, 0.17])  # wrist -> MCP of index, middle, ring, pinky
MCP_ANGLE = np.array([0.22, 0.07, -0.08, -0.22])  # towards the thumb side is positive
SPREAD_ANGLE = np.array([0.2, 0.06, -0.08, -0.22])
PHALANX = np.array([0.105, 0.065, 0.05])[None, :] * np.array([0.95, 1.05, 0.98, 0.78])[:, None]  # [4, 3]
BEND = np.array([1.3, 1.5, 1.0])  # radians per joint at full curl
THUMB = np.array([0.075, 0.06, 0.05])
N_PATH = 3  # sinusoids per gloss path
EMB_DIM = 64  # gloss visual embedding before the SigLIP projection
TWO_HAND_P = np.array([0.45, 0.25, 0.15, 0.15])  # other hand: rest, mirrored, alternating, base hand
POS_P = {"T": 0.1, "N": 0.45, "A": 0.15, "V": 0.3}  # part of speech of built-in glosses
CHUNK_FRAMES = 8192  # frames rendered at once (bounded memory; the missing-hand shares hold per chunk)
STOCK_SENTENCES = 30  # set phrases that recur in a corpus (a weather report's greeting, say)


# ---------------------------------------------------------------------------------------------
# The lexicon: per-gloss motion parameters.


@dataclass
class GlossBank:
    """Per-gloss arrays; the last row is the rest pose (a pseudo-gloss used at clip start and end)."""

    names: list[str]
    loc: np.ndarray  # [G, 2]
    amp: np.ndarray  # [G, N_PATH, 2]
    freq: np.ndarray  # [G, N_PATH] cycles per gloss
    phase: np.ndarray  # [G, N_PATH]
    drift: np.ndarray  # [G, 2]
    curl0: np.ndarray  # [G, 6] handshape at the start (5 curls + spread)
    curl1: np.ndarray  # [G, 6] handshape at the end
    angle0: np.ndarray  # [G] hand axis angle, 0 = fingers up
    angle1: np.ndarray  # [G]
    two: np.ndarray  # [G] other hand: 0 rest, 1 mirrored, 2 alternating, 3 base hand
    nd_loc: np.ndarray  # [G, 2] base-hand location
    nd_curl: np.ndarray  # [G, 6]
    nd_angle: np.ndarray  # [G]
    dur: np.ndarray  # [G] frames at speed 1
    nod: np.ndarray  # [G] head nod amplitude
    emb: np.ndarray  # [G, EMB_DIM] visual embedding (location + handshape + mouthing)

    @property
    def rest(self) -> int:
        return len(self.names)


def _name_rng(seed: int, name: str) -> np.random.Generator:
    # A gloss's motion depends only on the seed and its name, not on the lexicon's order or size.
    digest = hashlib.sha256(f"vlp-sweep-synth:{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _one_gloss(rng: np.random.Generator) -> dict[str, Any]:
    anchor, shape = int(rng.integers(len(ANCHORS))), int(rng.integers(len(HANDSHAPES)))
    two = int(rng.choice(4, p=TWO_HAND_P))
    curl0 = np.clip(HANDSHAPES[shape] + rng.normal(0, 0.05, 6), 0, 1)
    # A third of the glosses change handshape during the sign (opening, closing).
    curl1 = np.clip(HANDSHAPES[rng.integers(len(HANDSHAPES))] + rng.normal(0, 0.05, 6), 0, 1) \
        if rng.random() < 0.33 else curl0
    nd_loc = np.array([0.1, 0.6]) + rng.normal(0, 0.08, 2)
    loc = ANCHORS[anchor] + rng.normal(0, 0.1, 2)
    if two == 3:  # the dominant hand acts on the base hand
        loc = nd_loc + np.array([-0.18, -0.15]) + rng.normal(0, 0.05, 2)
    angle0 = rng.uniform(-0.8, 0.8)
    return {"anchor": anchor, "shape": shape, "loc": loc, "amp": rng.normal(0, 0.14, (N_PATH, 2)),
            "freq": rng.choice([0.5, 1.0, 1.5, 2.0], N_PATH), "phase": rng.uniform(0, 2 * np.pi, N_PATH),
            "drift": rng.normal(0, 0.22, 2), "curl0": curl0, "curl1": curl1, "angle0": angle0,
            "angle1": angle0 + rng.normal(0, 0.4), "two": two, "nd_loc": nd_loc,
            "nd_curl": np.clip(HANDSHAPES[rng.integers(len(HANDSHAPES))] + rng.normal(0, 0.05, 6), 0, 1),
            "nd_angle": rng.uniform(-1.6, -0.8), "dur": rng.uniform(6, 20),
            "nod": rng.normal(0, 0.06) if rng.random() < 0.25 else 0.0, "mouth": rng.normal(0, 1, EMB_DIM)}


def _rest_gloss() -> dict[str, Any]:
    z2 = np.zeros(2)
    return {"anchor": -1, "shape": -1, "loc": REST_XY, "amp": np.zeros((N_PATH, 2)), "freq": np.ones(N_PATH),
            "phase": np.zeros(N_PATH), "drift": z2, "curl0": RELAXED, "curl1": RELAXED, "angle0": np.pi,
            "angle1": np.pi, "two": 0, "nd_loc": z2, "nd_curl": RELAXED, "nd_angle": 0.0, "dur": 3.0,
            "nod": 0.0, "mouth": np.zeros(EMB_DIM)}


def make_bank(names: list[str], seed: int) -> GlossBank:
    """Motion parameters of each named gloss (+ the rest pose as the last row)."""
    rows = [_one_gloss(_name_rng(seed, n)) for n in names] + [_rest_gloss()]
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    # What a frame *shows*: shared location and handshape parts (glosses that share them look alike
    # to an image model) plus a gloss-specific mouthing part, which keypoints without a face lack.
    tables = np.random.default_rng([seed, 7]).normal(0, 1, (len(ANCHORS) + len(HANDSHAPES) + 1, EMB_DIM))
    emb = 0.6 * tables[col["anchor"]] + 0.5 * tables[len(ANCHORS) + col["shape"]] + 0.6 * col["mouth"]
    emb[-1] = tables[-1]  # the rest pose
    return GlossBank(names=list(names), emb=emb, **{k: col[k] for k in GlossBank.__dataclass_fields__
                                                     if k not in ("names", "emb")})


# ---------------------------------------------------------------------------------------------
# Sentences: gloss sequences, texts, lengths, signers.


_SYL = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")


def _pseudo_words(rng: np.random.Generator, n: int, syllables: tuple[int, int], taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(_SYL, rng.integers(syllables[0], syllables[1] + 1)))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


@dataclass
class BuiltinLexicon:
    names: list[str]  # gloss names (upper case)
    words: list[str]  # the spoken-language word of each gloss
    pos: list[str]  # T time, N noun, A adjective, V verb
    article: list[str]  # nouns' article (grammatical class)


def builtin_lexicon(n: int, seed: int) -> BuiltinLexicon:
    rng = np.random.default_rng([seed, 1])
    taken: set[str] = set()
    names = [w.upper() for w in _pseudo_words(rng, n, (2, 3), taken)]
    words = _pseudo_words(rng, n, (2, 3), taken)
    pos = list(rng.choice(list(POS_P), n, p=list(POS_P.values())))
    article = list(rng.choice(["la", "lo", "li"], n))
    return BuiltinLexicon(names, words, [str(p) for p in pos], [str(a) for a in article])


def sign_order(glosses: np.ndarray, pos: list[str]) -> np.ndarray:
    """Signing order: time glosses first, verbs last (stable otherwise)."""
    key = np.array([{"T": 0, "V": 2}.get(pos[g], 1) for g in glosses])
    return glosses[np.argsort(key, kind="stable")]


def text_of(glosses: np.ndarray, lex: BuiltinLexicon) -> str:
    """The sentence of a gloss sequence: verb second, adjectives before their noun, articles on nouns."""
    phrases: list[list[str]] = []  # noun phrases and time adverbs, in signing order
    verbs: list[str] = []
    for g in glosses:
        p, w = lex.pos[g], lex.words[g]
        if p == "V":
            verbs.append(w)
        elif p == "A" and phrases and phrases[-1][0] in ("la", "lo", "li"):
            phrases[-1].insert(1, w)  # an adjective signed after its noun is spoken before it
        elif p == "N":
            phrases.append([lex.article[g], w])
        else:
            phrases.append([w])
    if not phrases:
        return " ".join(verbs)
    middle = verbs or ["esa"]  # a copula when nothing is a verb
    return " ".join(phrases[0] + middle + [w for ph in phrases[1:] for w in ph])


def _zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    # Frequency rank is a random permutation of the lexicon, so frequent glosses have random motions.
    w = 1.0 / (np.arange(n) + 2.0) ** a
    return (w / w.sum())[rng.permutation(n)]


def _draw_sentence(weights: np.ndarray, lex: BuiltinLexicon, rng: np.random.Generator) -> np.ndarray:
    """2-9 glosses (about 4.5 on average), Zipf-distributed, in signing order."""
    return sign_order(rng.choice(len(weights), 2 + rng.binomial(7, 0.35), p=weights), lex.pos)


def _builtin_sentences(p: SynthParams, lex: BuiltinLexicon,
                       rng: np.random.Generator) -> tuple[list[str], list[np.ndarray], list[str]]:
    weights = _zipf_weights(len(lex.names), p.zipf, rng)
    stock = [_draw_sentence(weights, lex, rng) for _ in range(STOCK_SENTENCES)]
    stock_w = _zipf_weights(STOCK_SENTENCES, 1.0, rng)
    split, seqs, texts = [], [], []
    for s, n in p.split_sizes().items():
        for _ in range(n):
            reuse = rng.random() < p.repeat
            g = stock[rng.choice(STOCK_SENTENCES, p=stock_w)] if reuse else _draw_sentence(weights, lex, rng)
            split.append(s)
            seqs.append(g)
            texts.append(text_of(g, lex))
    return split, seqs, texts


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


# ---------------------------------------------------------------------------------------------
# Signers.


@dataclass
class Signers:
    width: np.ndarray  # [S] shoulder width in pixels
    centre: np.ndarray  # [S, 2] shoulder centre in pixels
    rotation: np.ndarray  # [S] radians
    speed: np.ndarray  # [S] signing speed factor
    amp: np.ndarray  # [S] size of the signing space
    offset: np.ndarray  # [S, 2] where in space they sign (body units)
    hand: np.ndarray  # [S] hand size
    lefty: np.ndarray  # [S] bool
    jitter: np.ndarray  # [S] detector noise factor
    miss_bias: np.ndarray  # [S, 2] camera/lighting: hands of some signers go missing more
    shear: np.ndarray  # [S] camera angle / build: x shifts with height (not undone by normalising)
    aspect: np.ndarray  # [S] vertical stretch (body proportions, camera tilt)
    appearance: np.ndarray  # [S, siglip_dim]


FRAME_PX = 1000.0  # the raw coordinates live in a 1000 x 1000 pixel frame


def make_signers(p: SynthParams, rng: np.random.Generator) -> Signers:
    s, v = p.signers, p.signer_variation
    n_seen = s - p.heldout_signers
    lefty = np.zeros(s, dtype=bool)
    if p.left_handed > 0:  # at least one left-hander among seen and among held-out signers
        for lo, hi in ((0, n_seen), (n_seen, s)):
            k = min(hi - lo, max(1, round(p.left_handed * (hi - lo))))
            lefty[lo + rng.choice(hi - lo, k, replace=False)] = True
    centre = np.c_[rng.uniform(420, 580, s), rng.uniform(380, 470, s)]
    return Signers(width=rng.uniform(160, 260, s), centre=centre,
                   rotation=np.radians(rng.uniform(-p.rotation_deg, p.rotation_deg, s)),
                   speed=np.exp(rng.normal(0, 0.2 * v, s)), amp=np.exp(rng.normal(0, 0.15 * v, s)),
                   offset=rng.normal(0, 0.08 * v, (s, 2)), hand=np.exp(rng.normal(0, 0.07 * v, s)),
                   lefty=lefty,
                   jitter=rng.uniform(0.7, 1.3, s), miss_bias=rng.normal(0, 0.3, (s, 2)),
                   shear=rng.normal(0, 0.12 * v, s), aspect=np.exp(rng.normal(0, 0.1 * v, s)),
                   appearance=rng.normal(0, p.siglip_appearance, (s, p.siglip_dim)))


# ---------------------------------------------------------------------------------------------
# Timeline: rest, gloss, transition, gloss, ..., rest; then time-warped to the clip length.


@dataclass
class Timeline:
    """Per output frame: the two (gloss, phase, instance) ends of the motion and their blend."""

    clip: np.ndarray  # [F] clip index within the chunk
    g_a: np.ndarray  # [F] gloss index (bank row)
    u_a: np.ndarray  # [F] phase within the gloss, 0..1
    i_a: np.ndarray  # [F] instance index
    g_b: np.ndarray
    u_b: np.ndarray
    i_b: np.ndarray
    alpha: np.ndarray  # [F] blend weight of the b end (0 inside a gloss)


@dataclass
class Instances:
    """One performance of a gloss: small offsets so no two occurrences are identical."""

    offset: np.ndarray  # [I, 2]
    amp: np.ndarray  # [I]
    angle: np.ndarray  # [I]
    curl: np.ndarray  # [I, 6]


def _holds(seqs: list[np.ndarray], rest: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat hold segments (rest, glosses..., rest per clip) and each clip's first hold."""
    counts = np.array([len(s) + 2 for s in seqs])
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    g = np.concatenate([np.r_[rest, s, rest] for s in seqs]).astype(np.int64)
    return g, first


def build_timeline(seqs: list[np.ndarray], n_frames: np.ndarray, speed: np.ndarray, bank: GlossBank,
                   variation: float, rng: np.random.Generator) -> tuple[Timeline, Instances]:
    """Lay out each clip's segments in natural time and sample them at the clip's output frames."""
    hold_g, first = _holds(seqs, bank.rest)
    n_holds = np.diff(np.r_[first, len(hold_g)])
    clip_of_hold = np.repeat(np.arange(len(seqs)), n_holds)
    inst = Instances(offset=rng.normal(0, 0.06 * variation, (len(hold_g), 2)),
                     amp=np.exp(rng.normal(0, 0.15 * variation, len(hold_g))),
                     angle=rng.normal(0, 0.12 * variation, len(hold_g)),
                     curl=rng.normal(0, 0.05 * variation, (len(hold_g), 6)))
    is_rest = hold_g == bank.rest
    hold_dur = np.where(is_rest, rng.uniform(1, 4, len(hold_g)),
                        bank.dur[hold_g] * np.exp(rng.normal(0, 0.15 * variation, len(hold_g))))
    hold_dur = hold_dur / speed[clip_of_hold]
    # Segments interleave hold j and transition j -> j+1 (none after a clip's last hold).
    last = np.r_[first[1:], len(hold_g)] - 1
    has_trans = np.ones(len(hold_g), dtype=bool)
    has_trans[last] = False
    trans_dur = rng.uniform(2, 5, len(hold_g)) / speed[clip_of_hold]
    seg_hold = np.repeat(np.arange(len(hold_g)), 1 + has_trans)
    seg_kind = np.zeros(len(seg_hold), dtype=np.int8)
    seg_kind[1:][np.diff(seg_hold) == 0] = 1  # the second segment of a hold is its outgoing transition
    seg_dur = np.where(seg_kind == 1, trans_dur[seg_hold], hold_dur[seg_hold])
    seg_start = np.concatenate([[0.0], np.cumsum(seg_dur)[:-1]])
    clip_start = seg_start[np.searchsorted(seg_hold, first)]
    natural = np.add.reduceat(seg_dur, np.searchsorted(seg_hold, first))
    tl = _sample(seg_hold, seg_kind, seg_start, seg_dur, clip_start, natural, n_frames, hold_g, rng)
    return tl, inst


def _warp(x: np.ndarray, clip: np.ndarray, rng: np.random.Generator, n_clips: int) -> np.ndarray:
    """A random monotone time warp of [0, 1] per clip: the signer speeds up and slows down."""
    a = rng.uniform(-0.35, 0.35, n_clips)[clip]
    k = rng.integers(1, 3, n_clips)[clip]
    return x + a * np.sin(2 * np.pi * k * x) / (2 * np.pi * k)


def _sample(seg_hold: np.ndarray, seg_kind: np.ndarray, seg_start: np.ndarray, seg_dur: np.ndarray,
            clip_start: np.ndarray, natural: np.ndarray, n_frames: np.ndarray, hold_g: np.ndarray,
            rng: np.random.Generator) -> Timeline:
    clip = np.repeat(np.arange(len(n_frames)), n_frames)
    t = np.arange(len(clip)) - np.repeat(np.cumsum(n_frames) - n_frames, n_frames)
    x = _warp((t + 0.5) / n_frames[clip], clip, rng, len(n_frames))
    tau = clip_start[clip] + np.clip(x, 0, 1) * natural[clip]
    seg = np.clip(np.searchsorted(seg_start, tau, side="right") - 1, 0, len(seg_start) - 1)
    v = np.clip((tau - seg_start[seg]) / seg_dur[seg], 0, 1)
    trans = seg_kind[seg] == 1
    h = seg_hold[seg]
    h_b = np.where(trans, np.minimum(h + 1, len(hold_g) - 1), h)
    alpha = np.where(trans, v * v * (3 - 2 * v), 0.0)  # smoothstep between the two glosses
    return Timeline(clip=clip, g_a=hold_g[h], u_a=np.where(trans, 1.0, v), i_a=h, g_b=hold_g[h_b],
                    u_b=np.where(trans, 0.0, v), i_b=h_b, alpha=alpha)


def natural_lengths(seqs: list[np.ndarray], bank: GlossBank, speed: np.ndarray) -> np.ndarray:
    """Expected natural length of each sentence (for handing out target lengths by rank)."""
    d = np.array([bank.dur[s].sum() + 3.5 * (len(s) + 1) + 5.0 for s in seqs])
    return d / speed


# ---------------------------------------------------------------------------------------------
# Motion state per frame (body units, canonical right-handed signer).


@dataclass
class State:
    dom: np.ndarray  # [F, 2] dominant wrist
    dom_shape: np.ndarray  # [F, 6] curls + spread
    dom_angle: np.ndarray  # [F]
    nd: np.ndarray  # [F, 2] other wrist
    nd_shape: np.ndarray  # [F, 6]
    nd_angle: np.ndarray  # [F]
    nd_rest: np.ndarray  # [F] 1 while the other hand rests
    nod: np.ndarray  # [F]

    def blend(self, other: State, alpha: np.ndarray) -> State:
        def mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            w = alpha.reshape((-1,) + (1,) * (a.ndim - 1))
            return a * (1 - w) + b * w

        return State(**{k: mix(getattr(self, k), getattr(other, k)) for k in self.__dataclass_fields__})


def gloss_state(bank: GlossBank, inst: Instances, g: np.ndarray, u: np.ndarray, i: np.ndarray,
                s_amp: np.ndarray, s_off: np.ndarray) -> State:
    """The motion of gloss ``g`` at phase ``u`` in performance ``i`` by a signer with (amp, offset)."""
    rest = (g == bank.rest)[:, None]
    wave = bank.amp[g] * np.sin(2 * np.pi * bank.freq[g] * u[:, None] + bank.phase[g])[..., None]  # [F, P, 2]
    path = wave.sum(1) + bank.drift[g] * (u[:, None] - 0.5)
    scale = (s_amp * inst.amp[i])[:, None]
    base = bank.loc[g] + np.where(rest, 0.0, inst.offset[i] + s_off)
    dom = base + scale * path
    uu = u[:, None]
    shape = np.clip(bank.curl0[g] * (1 - uu) + bank.curl1[g] * uu + inst.curl[i], 0, 1)
    angle = bank.angle0[g] * (1 - u) + bank.angle1[g] * u + inst.angle[i]
    two = bank.two[g]
    mirror = np.array([-1.0, 1.0])
    on_base = bank.nd_loc[g] + inst.offset[i] * 0.5 + s_off
    nd = np.select([two[:, None] == 1, two[:, None] == 2, two[:, None] == 3],
                   [dom * mirror, (base - scale * path) * mirror, on_base], REST_XY * mirror)
    nd_shape = np.select([(two == 1)[:, None] | (two == 2)[:, None], (two == 3)[:, None]],
                         [shape, bank.nd_curl[g]], RELAXED)
    nd_angle = np.select([(two == 1) | (two == 2), two == 3], [-angle, bank.nd_angle[g]], -np.pi)
    nod = bank.nod[g] * np.sin(2 * np.pi * u)
    return State(dom, shape, angle, nd, nd_shape, nd_angle, (two == 0).astype(np.float64), nod)


# ---------------------------------------------------------------------------------------------
# Rendering: hands by 2-D finger kinematics, arms by 2-link IK, then into the pixel frame.


def _dir(theta: np.ndarray) -> np.ndarray:
    """Unit vector of a hand-axis angle (0 = up, positive towards +x), shape [..., 2]."""
    return np.stack([np.sin(theta), -np.cos(theta)], axis=-1)


def render_hand(wrist: np.ndarray, shape: np.ndarray, angle: np.ndarray, size: np.ndarray,
                side: float) -> np.ndarray:
    """21 hand points ``[F, 21, 2]`` (HAND_POINTS order); ``side`` +1 puts the thumb towards +x."""
    f = len(wrist)
    out = np.empty((f, 21, 2))
    out[:, 0] = wrist
    sz = size[:, None, None]
    # Thumb: its direction swings across the palm as it curls; joints foreshorten as they bend.
    ct = shape[:, 0]
    cmc = wrist + 0.055 * size[:, None] * _dir(angle + side * 1.0)
    psi = angle + side * (0.9 - 1.1 * ct)
    bends = np.cumsum(ct[:, None] * np.array([0.4, 0.5, 0.5]), axis=1)  # [F, 3]
    steps = THUMB * np.cos(bends)  # [F, 3]
    pts = cmc[:, None] + sz * np.cumsum(steps[..., None] * _dir(psi)[:, None], axis=1)
    out[:, 1], out[:, 2:5] = cmc, pts
    # Fingers: MCP on the palm, then three phalanges whose projected length shrinks with the curl.
    mcp_dir = _dir(angle[:, None] + side * MCP_ANGLE)  # [F, 4, 2]
    mcp = wrist[:, None] + sz * PALM[None, :, None] * mcp_dir
    phi = angle[:, None] + side * SPREAD_ANGLE * (0.4 + shape[:, 5:6])  # [F, 4]
    beta = np.cumsum(shape[:, 1:5, None] * BEND, axis=2)  # [F, 4, 3]
    along = PHALANX * np.cos(beta)
    across = PHALANX * 0.25 * np.sin(beta)  # a little of the folded finger shows beside the palm
    sideways = _dir(phi - side * np.pi / 2)[:, :, None]
    disp = along[..., None] * _dir(phi)[:, :, None] + across[..., None] * sideways
    joints = mcp[:, :, None] + sz[..., None] * np.cumsum(disp, axis=2)  # [F, 4, 3, 2]
    fingers = np.concatenate([mcp[:, :, None], joints], axis=2)  # [F, 4, 4, 2]
    out[:, 5:] = fingers.reshape(f, 16, 2)
    return out


def elbow(shoulder: np.ndarray, wrist: np.ndarray, outward: float) -> np.ndarray:
    """2-link inverse kinematics; of the two solutions, the elbow that points away from the body."""
    d = wrist - shoulder
    dist = np.linalg.norm(d, axis=1)
    r = np.clip(dist, abs(UPPER_ARM - FOREARM) + 1e-3, UPPER_ARM + FOREARM - 1e-3)
    cos_a = np.clip((UPPER_ARM ** 2 + r ** 2 - FOREARM ** 2) / (2 * UPPER_ARM * r), -1, 1)
    a = np.arccos(cos_a)
    base = np.arctan2(d[:, 1], d[:, 0])
    e1 = shoulder + UPPER_ARM * np.stack([np.cos(base + a), np.sin(base + a)], 1)
    e2 = shoulder + UPPER_ARM * np.stack([np.cos(base - a), np.sin(base - a)], 1)
    return np.where(((e1[:, 0] - e2[:, 0]) * outward > 0)[:, None], e1, e2)


def render_body(st: State, sway: np.ndarray) -> np.ndarray:
    """8 body points ``[F, 8, 2]``: the head nods, the upper body sways, a shoulder rises with its hand."""
    f = len(st.dom)
    body = np.broadcast_to(BODY_XY, (f, 8, 2)).copy()
    body[:, :6] += sway[:, None]
    body[:, 0, 1] += st.nod
    body[:, 0] += 0.3 * sway  # the head sways more than the shoulders
    body[:, 3, 1] += 0.06 * np.minimum(0.0, st.dom[:, 1] - 0.2)  # right (dominant) shoulder
    body[:, 2, 1] += 0.06 * np.minimum(0.0, st.nd[:, 1] - 0.2)
    body[:, 5] = elbow(body[:, 3], st.dom, -1.0)
    body[:, 4] = elbow(body[:, 2], st.nd, 1.0)
    return body


SWAP_LR = np.r_[0, 1, 3, 2, 5, 4, 7, 6, np.arange(29, 50), np.arange(8, 29)]  # mirror image: left <-> right


# ---------------------------------------------------------------------------------------------
# Detector behaviour: jitter, missing hands in bursts, confidence.


def _bursty(rng: np.random.Generator, n: int, width: int = 9) -> np.ndarray:
    """Unit-variance noise correlated over ~``width`` frames: thresholding it gives bursts."""
    k = np.hanning(width + 2)[1:-1]
    z = np.convolve(rng.standard_normal(n + width), k, mode="same")[width // 2: width // 2 + n]
    return z / np.sqrt((k ** 2).sum())


def _speed(xy: np.ndarray, clip: np.ndarray) -> np.ndarray:
    v = np.zeros(len(xy))
    v[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    first = np.r_[True, clip[1:] != clip[:-1]]
    v[first] = np.r_[v[1:], 0.0][first]  # a clip's first frame borrows the next frame's speed
    return v


def _missing(score: np.ndarray, rate: float) -> np.ndarray:
    """The ``rate`` share of frames with the highest score (exact share, robust to every knob)."""
    if rate <= 0:
        return np.zeros(len(score), dtype=bool)
    return score > np.quantile(score, 1 - rate)


def detector(body: np.ndarray, st: State, tl: Timeline, s: np.ndarray, sg: Signers, p: SynthParams,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jitter and confidence (0 = missing) of canonical points ``[F, 50, 2]`` (body units), per frame.

    ``s`` is each frame's signer. The other hand is points 8..28, the dominant hand 29..49.
    """
    f = len(body)
    jit = (p.noise * sg.jitter[s])[:, None, None]
    # Large draws in float32: half the cost, and the output is float16 anyway.
    xy = body + jit * (0.012 * rng.standard_normal(body.shape, dtype=np.float32))
    for lo, hi in ((8, 29), (29, 50)):
        xy[:, lo:hi] += jit * rng.normal(0, 0.015, (f, 1, 2))  # the whole hand wobbles between frames
    z_dom, z_nd = (_zscore(_speed(h, tl.clip)) for h in (st.dom, st.nd))
    # Fast hands blur and a resting hand leaves the frame: both go missing more, in bursts.
    miss_dom = _missing(_bursty(rng, f) + 0.7 * z_dom + sg.miss_bias[s, 0], p.missing_dominant)
    miss_nd = _missing(_bursty(rng, f) + 0.7 * z_nd + 1.5 * st.nd_rest + sg.miss_bias[s, 1], p.missing_other)
    conf = 1.0 - 0.45 * rng.random((f, 50), dtype=np.float32) ** 2
    conf[:, 8:29] -= 0.05 * np.clip(z_nd, 0, 3)[:, None]
    conf[:, 29:50] -= 0.05 * np.clip(z_dom, 0, 3)[:, None]
    conf = np.clip(conf, 0.51, 1.0)
    for miss, lo, hi in ((miss_nd, 8, 29), (miss_dom, 29, 50)):
        conf[miss, lo:hi] = 0.0
    return xy, conf


def _zscore(v: np.ndarray) -> np.ndarray:
    return (v - v.mean()) / (v.std() + 1e-9)


def siglip_features(tl: Timeline, bank: GlossBank, s: np.ndarray, sg: Signers, proj: np.ndarray,
                    p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """Per-frame features: projected gloss embedding (blended in transitions) + appearance + noise."""
    a = tl.alpha[:, None]
    emb = bank.emb[tl.g_a] * (1 - a) + bank.emb[tl.g_b] * a
    feat = (p.siglip_signal * (emb @ proj) + sg.appearance[s]).astype(np.float32)
    return feat + p.siglip_noise * rng.standard_normal(feat.shape, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Putting it together.


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
    split_l, seqs, texts = _builtin_sentences(p, lex, rng)
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


def render_chunk(c: Corpus, idx: np.ndarray, sg: Signers, proj: np.ndarray | None, p: SynthParams,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Keypoints ``[F, 50, 2]`` (pixels), confidence ``[F, 50]`` and SigLIP ``[F, D]`` of clips ``idx``."""
    signer = c.signer[idx]
    seqs = [c.seqs[i] for i in idx]
    tl, inst = build_timeline(seqs, c.n_frames[idx], sg.speed[signer], c.bank, p.variation, rng)
    s = signer[tl.clip]
    a = gloss_state(c.bank, inst, tl.g_a, tl.u_a, tl.i_a, sg.amp[s], sg.offset[s])
    b = gloss_state(c.bank, inst, tl.g_b, tl.u_b, tl.i_b, sg.amp[s], sg.offset[s])
    st = a.blend(b, tl.alpha)
    hand = sg.hand[s]
    pts = np.concatenate([render_body(st, _sway(tl.clip, p, rng)),
                          render_hand(st.nd, st.nd_shape, st.nd_angle, hand, -1.0),
                          render_hand(st.dom, st.dom_shape, st.dom_angle, hand, 1.0)], axis=1)
    pts, conf = detector(pts, st, tl, s, sg, p, rng)
    cam = rng.normal(0, 12.0, (len(idx), 2))[tl.clip]  # the camera framing differs a little per clip
    kp, conf = to_pixels(pts, conf, s, sg, cam)
    kp[conf == 0] = 0.0  # a missing point has no coordinates, as in MediaPipe output
    sig = None if proj is None else siglip_features(tl, c.bank, s, sg, proj, p, rng).astype(np.float16)
    return kp.astype(np.float16), conf.astype(np.float16), sig


def _sway(clip: np.ndarray, p: SynthParams, rng: np.random.Generator) -> np.ndarray:
    """A slow, small sway of the upper body per clip, ``[F, 2]`` in body units."""
    n = int(clip[-1]) + 1
    t = np.arange(len(clip)) / p.fps
    freq, phase = rng.uniform(0.1, 0.4, n)[clip, None], rng.uniform(0, 2 * np.pi, (n, 2))[clip]
    amp = rng.normal(0, 0.03 * p.signer_variation, (n, 2))[clip]
    return amp * np.sin(2 * np.pi * freq * t[:, None] + phase)


def to_pixels(points: np.ndarray, conf: np.ndarray, s: np.ndarray, sg: Signers,
              cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body units -> pixels: mirror left-handers (swapping left/right names), shear and stretch by
    signer, rotate, scale, place."""
    lefty = sg.lefty[s]
    points, conf = points.copy(), conf.copy()
    points[lefty, :, 0] *= -1
    points[lefty] = points[lefty][:, SWAP_LR]
    conf[lefty] = conf[lefty][:, SWAP_LR]
    c, si = np.cos(sg.rotation[s])[:, None], np.sin(sg.rotation[s])[:, None]
    y = points[..., 1] * sg.aspect[s][:, None]
    x = points[..., 0] + sg.shear[s][:, None] * y
    w = sg.width[s][:, None]
    px = sg.centre[s, 0][:, None] + cam[:, 0:1] + w * (c * x - si * y)
    py = sg.centre[s, 1][:, None] + cam[:, 1:2] + w * (si * x + c * y)
    return np.stack([px, py], axis=-1), conf


Packed = tuple[pd.DataFrame, np.ndarray, np.ndarray, "np.ndarray | None", dict[str, Any]]


def generate(params: SynthParams | None = None, **overrides: Any) -> Packed:
    """The whole corpus in memory: ``(manifest, keypoints, confidence, siglip or None, meta)``."""
    p = make_params(**{**(asdict(params) if params else {}), **overrides})
    seeds = np.random.SeedSequence(p.seed).spawn(4)
    rng_sent, rng_signers, rng_proj = (np.random.default_rng(s) for s in seeds[:3])
    sg = make_signers(p, rng_signers)
    c = corpus_from_csv(p, rng_sent) if p.corpus else builtin_corpus(p, sg, rng_sent)
    proj = rng_proj.normal(0, 1 / math.sqrt(EMB_DIM), (EMB_DIM, p.siglip_dim)) if p.siglip_dim else None
    chunks = _chunks(c.n_frames)
    clips: list[dict[str, Any]] = []
    for idx, ss in zip(chunks, seeds[3].spawn(len(chunks))):
        kp, conf, sig = render_chunk(c, idx, sg, proj, p, np.random.default_rng(ss))
        clips.extend(_split_clips(c, idx, kp, conf, sig))
    manifest, kp, conf, sig = pack_clips(clips)
    return manifest, kp, conf, sig, _meta(p, c, sg)


def _chunks(n_frames: np.ndarray) -> list[np.ndarray]:
    """Consecutive clips in groups of about CHUNK_FRAMES frames.

    Small chunks keep every temporary array a few MB, so the allocator reuses memory instead of
    mapping fresh pages for each one (which costs more than the arithmetic on some machines).
    """
    group = np.cumsum(n_frames) // CHUNK_FRAMES
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.split(np.arange(len(n_frames)), starts[1:])


def _split_clips(c: Corpus, idx: np.ndarray, kp: np.ndarray, conf: np.ndarray,
                 sig: np.ndarray | None) -> list[dict[str, Any]]:
    bounds = np.r_[0, np.cumsum(c.n_frames[idx])]
    out = []
    for j, i in enumerate(idx):
        a, b = bounds[j], bounds[j + 1]
        out.append({"id": c.ids[i], "split": c.split[i], "text": c.text[i], "keypoints": kp[a:b],
                    "confidence": conf[a:b], "siglip": None if sig is None else sig[a:b],
                    "gloss": " ".join(c.names[g] for g in c.seqs[i]), "signer": f"S{int(c.signer[i]):02d}"})
    return out


def _meta(p: SynthParams, c: Corpus, sg: Signers) -> dict[str, Any]:
    from vlp_sweep import __version__

    params = {**asdict(p), **p.split_sizes()}
    corpus = {"corpus_sha256": hashlib.sha256(Path(p.corpus).read_bytes()).hexdigest()} if p.corpus else {}
    return {"layout": synthetic_layout().to_meta(), "fps": p.fps,
            "frame": {"width": FRAME_PX, "height": FRAME_PX, "units": "pixels"},
            "provenance": {"source": "synthetic", "tool": "vlp-sweep data synth", "version": __version__,
                           "params": params, **corpus, "lexicon_size": len(c.names),
                           "left_handed_signers": [f"S{i:02d}" for i in np.flatnonzero(sg.lefty)],
                           "heldout_signers": [f"S{i:02d}" for i in range(p.signers - p.heldout_signers,
                                                                          p.signers)]}}


def synthesize(out: str | Path, *, overwrite: bool = False, **params: Any) -> Path:
    """Generate a synthetic corpus and write it as a packed dataset (atomically) at ``out``."""
    out = Path(out)
    if out.exists() and not overwrite:  # fail before spending time on generation
        raise UserError(f"output folder exists: {out} (pass --overwrite to replace it)")
    manifest, kp, conf, sig, meta = generate(**params)
    return write_packed(out, manifest, kp, conf, sig, meta, overwrite=overwrite)

"""Built-in language: pseudo-words per gloss, signing order vs spoken order, Zipf-drawn sentences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlp_sweep.data.synth.knobs import SynthParams

POS_P = {"T": 0.1, "N": 0.45, "A": 0.15, "V": 0.3}  # part of speech of built-in glosses

STOCK_SENTENCES = 30  # set phrases that recur in a corpus (a weather report's greeting, say)

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


def builtin_sentences(p: SynthParams, lex: BuiltinLexicon,
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

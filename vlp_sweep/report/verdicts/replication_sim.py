"""Confirm tables with a known truth, for calibrating the seed-level verdicts (``replication.py``).

Two configurations, each trained with S seeds and evaluated on the same test queries of a few signers.
Query i of signer g is retrieved at rank 1 by seed s of configuration c with probability

    pi = sigmoid(base + shift_c + signer_g + query_i + (c x query)_ci + (c x signer)_cg + seed_cs + (seed x signer)_csg)

every term after ``signer_g`` a zero-mean normal drawn afresh per table (``query_i`` shared by both
configurations, the others their own). Its rank is geometric with that probability (``P(rank = 1) = pi``,
``P(rank <= k) = 1 - (1 - pi)^k``), capped at N; v2t is a second draw with the same pi. So the seed, the
signer and the query all move R@1 as the confirm tables show, and a verdict that takes the seed as its unit
and the signers as clusters has to hold against all of them.

Under ``shift = 0`` the two configurations are equal over new seeds, signers and queries; ``population_r1``
gives the true R@1 of a configuration (over new seeds and queries, these signers' difficulties, weighted by
their queries) by Gauss-Hermite quadrature, and ``shift_for`` the shift that makes a true difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vlp_sweep.report.stats import Ranks

__all__ = ["SCENARIOS", "Scenario", "draw_pair", "population_r1", "shift_for"]


@dataclass(frozen=True)
class Scenario:
    """A test split and how much each source moves a query's logit of being retrieved at rank 1."""

    name: str
    sizes: tuple[int, ...]  # queries per signer
    signer_logit: tuple[float, ...]  # each signer's difficulty (logit of R@1, before the random terms)
    query_sd: float = 0.5  # query difficulty, shared by the configurations
    config_query_sd: float = 0.5  # what one configuration finds hard and the other does not
    config_signer_sd: float = 0.15  # a configuration suits some signers better than others
    seed_sd: float = 0.15  # a seed's overall luck
    seed_signer_sd: float = 0.2  # a seed's luck on one signer
    signer_ids: bool = True  # whether the verdict is given the signer ids

    def __post_init__(self) -> None:
        if len(self.sizes) != len(self.signer_logit) or not self.sizes:
            raise ValueError(f"sizes and signer_logit must have one entry per signer, got {self.sizes} and "
                             f"{self.signer_logit}")

    @property
    def n_queries(self) -> int:
        return int(sum(self.sizes))

    def signers(self) -> np.ndarray | None:
        """``[N]`` signer ids, or None when the verdict is not given them."""
        return np.repeat([f"S{g:02d}" for g in range(len(self.sizes))], self.sizes) if self.signer_ids else None

    def total_sd(self, with_config_signer: bool = True) -> float:
        """SD of the sum of the random terms (of those given a configuration's signer terms, without them)."""
        parts = [self.query_sd, self.config_query_sd, self.seed_sd, self.seed_signer_sd]
        return math.sqrt(sum(x * x for x in parts) + (self.config_signer_sd**2 if with_config_signer else 0.0))


# The quickstart's test split (3 signers of 75/71/54 queries; R@1 about 22 %, 14 % and 6 % by signer) with a
# seed-to-seed SD of R@1 near the 2-3.5 points its confirm table shows; the same with a large seed effect;
# a Phoenix-2014T-like split (642 queries, 8 signers of unequal size); a split without signer ids.
SCENARIOS = {
    "quickstart": Scenario("quickstart", (75, 71, 54), (-1.4, -1.95, -2.9)),
    "quickstart, big seed effect": Scenario("quickstart, big seed effect", (75, 71, 54), (-1.4, -1.95, -2.9),
                                            seed_sd=0.5),
    "phoenix-like": Scenario("phoenix-like", (180, 140, 110, 80, 60, 40, 20, 12),
                             (-0.6, -1.0, -1.3, -0.8, -1.6, -1.1, -2.0, -0.7)),
    "no signer ids": Scenario("no signer ids", (200,), (-1.9,), config_signer_sd=0.0, seed_signer_sd=0.0,
                              signer_ids=False),
}


def _ranks(logit: np.ndarray, n: int, rng: np.random.Generator) -> list[Ranks]:
    """Per seed (rows of ``logit``): t2v and v2t ranks, each geometric with P(rank 1) = sigmoid(logit)."""
    pi = 1.0 / (1.0 + np.exp(-logit))
    t2v = np.minimum(rng.geometric(pi), n)
    v2t = np.minimum(rng.geometric(pi), n)
    return [Ranks(t2v[s], v2t[s]) for s in range(logit.shape[0])]


def _config_logit(sc: Scenario, seeds: int, shared: np.ndarray, signer: np.ndarray, shift: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``[S, N]`` logits of one configuration, and its drawn (c x signer) terms ``[G]``."""
    g, n = len(sc.sizes), sc.n_queries
    by_signer = rng.normal(0.0, sc.config_signer_sd, g)
    per_query = shared + rng.normal(0.0, sc.config_query_sd, n) + by_signer[signer]
    per_seed = rng.normal(0.0, sc.seed_sd, (seeds, 1)) + rng.normal(0.0, sc.seed_signer_sd, (seeds, g))[:, signer]
    return shift + np.asarray(sc.signer_logit)[signer] + per_query + per_seed, by_signer


def draw_pair(sc: Scenario, seeds: int, shift: float, rng: np.random.Generator
              ) -> tuple[list[Ranks], list[Ranks], np.ndarray]:
    """One confirm table: A's runs (logit shifted by ``shift``), B's runs, and ``[2, G]`` the drawn
    configuration x signer terms (for the truth of a verdict over these signers)."""
    signer = np.repeat(np.arange(len(sc.sizes)), sc.sizes)
    shared = rng.normal(0.0, sc.query_sd, sc.n_queries)
    la, ba = _config_logit(sc, seeds, shared, signer, shift, rng)
    lb, bb = _config_logit(sc, seeds, shared, signer, 0.0, rng)
    return _ranks(la, sc.n_queries, rng), _ranks(lb, sc.n_queries, rng), np.stack([ba, bb])


_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(80)  # E[f(Z)], Z ~ N(0, 1) = sum w f(x) / sqrt(2 pi)


def population_r1(sc: Scenario, shift: float, config_signer: np.ndarray | None = None) -> float:
    """True R@1 (percent) of a configuration over new seeds and queries of these signers (weighted by their
    queries): over new configuration x signer terms too, or given them (``config_signer``, ``[G]``)."""
    base = np.asarray(sc.signer_logit) + shift
    if config_signer is not None:
        base = base + config_signer
    sd = sc.total_sd(with_config_signer=config_signer is None)
    pi = 1.0 / (1.0 + np.exp(-(base[:, None] + sd * _NODES[None, :])))
    per_signer = pi @ _WEIGHTS / math.sqrt(2 * math.pi)
    return float(100.0 * np.dot(per_signer, sc.sizes) / sc.n_queries)


def shift_for(sc: Scenario, diff: float) -> float:
    """The logit shift of A that makes its true R@1 ``diff`` points above B's (bisection)."""
    target = population_r1(sc, 0.0) + diff
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if population_r1(sc, mid) < target else (lo, mid)
    return (lo + hi) / 2

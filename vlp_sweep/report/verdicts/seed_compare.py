"""Seed-level comparisons as the report states them (the confirmed headline and the ablations): one
comparison of two configurations' finished seeds, or why there is none, and Holm's correction across a
family of them, with the sentence of what the seeds can say."""

from __future__ import annotations

import numpy as np

from vlp_sweep.report import stats
from vlp_sweep.report.types import ConfirmedComparison
from vlp_sweep.report.verdicts import replication


def compare(cid: str, a: list[stats.Ranks], b: list[stats.Ranks], metric: str, signers: np.ndarray | None,
            over: str = "signers", resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
            b_name: str = "the baseline") -> ConfirmedComparison:
    """``cid``'s runs ``a`` minus ``b``'s, seed-level (``replication.compare_seeds``), before Holm."""
    why = "no finished seed" if not a else f"{b_name} has no finished seed" if not b else ""
    if not why and len(a[0]) != len(b[0]):
        why = f"different test query sets ({len(a[0])} vs {len(b[0])})"
    if why:
        return ConfirmedComparison(cid, None, None, why)
    res = replication.compare_seeds(a, b, metric, signers, over=over, resamples=resamples, seed=seed)
    return ConfirmedComparison(cid, res, None, res.verdict)


def holm_family(cmps: list[ConfirmedComparison]) -> list[ConfirmedComparison]:
    """Holm across the comparisons that have a p-value ("too few seeds" ones stay out of the family); each
    gets its adjusted p, the verdict from it, and what the seeds can say."""
    tested = [c for c in cmps if c.result is not None]
    for c, v in zip(tested, replication.with_holm([c.result for c in tested if c.result is not None])):
        c.result, c.p_holm, c.verdict = v, v.p_holm, v.verdict
        c.seeds = replication.seeds_sentence(v)
    return cmps

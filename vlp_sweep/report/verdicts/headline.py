"""The confirmed result in words: the headline sentence and the lines after it (report, terminal, promote).

The headline names the winner (chosen on dev) and what the seed-level comparison with the baseline says,
over how many seeds and signers. The lines after it say what the seeds cannot (too few, with the seeds it
would take), the verdict for these signers held fixed, a tie on dev, and whether the dev pick is the best
on the held-out split: a tie is a tie, and "did not hold" only when the pick is strictly worse there.
"""

from __future__ import annotations

import math

import numpy as np

from vlp_sweep.metric_names import MODE
from vlp_sweep.report import stats
from vlp_sweep.report.types import Confirmed, ConfirmedComparison, ConfirmedConfig
from vlp_sweep.report.verdicts import replication

Runs = dict[str, list[stats.Ranks]]


def higher_is_better(metric: str) -> bool:
    return MODE.get(metric, "max") == "max"


def num(x: float | None, metric: str = "") -> str:
    """A metric as the report prints it: ranks with one decimal at most, others with two; '-' for none."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.1f}".removesuffix(".0") if metric.endswith(("MedR", "MeanR")) else f"{x:.2f}"


def holm_text(c: ConfirmedComparison) -> str:
    """The Holm-adjusted p as text ("Holm p = 0.18", "Holm p < 0.001")."""
    p = c.p_holm
    if p is None or math.isnan(p):
        return "Holm p -"
    return "Holm p < 0.001" if p < 0.001 else f"Holm p = {p:.2g}"


def difference(v: replication.SeedVerdict) -> str:
    """"+10.75 [+5.00, +16.50]", or the bare difference when there is no interval (one seed)."""
    if math.isnan(v.low):
        return f"{v.diff:+.2f}"
    return f"{v.diff:+.2f} [{v.low:+.2f}, {v.high:+.2f}]"


def _config(out: Confirmed, cid: str) -> ConfirmedConfig:
    return next(c for c in out.configs if c.config_id == cid)


def _value(c: ConfirmedConfig, metric: str) -> str:
    if c.test is None:
        return f"{metric} -"
    if math.isnan(c.test.low):
        return f"{metric} {num(c.test.estimate, metric)}"
    return f"{metric} {num(c.test.estimate, metric)} [{num(c.test.low, metric)}, {num(c.test.high, metric)}]"


def _head(out: Confirmed, w: ConfirmedConfig, cmp: ConfirmedComparison | None) -> str:
    where = f"{_value(w, out.metric)} on the {out.split} split"
    if cmp is None or cmp.result is None:
        why = cmp.verdict if cmp is not None else "no baseline config to test it against"
        return f"Chosen on dev: {w.config_id}, {where}; {why}."
    r = cmp.result
    if cmp.verdict == replication.BETTER:
        return (f"Confirmed winner: {w.config_id}, {where}; better than the baseline by {difference(r)} "
                f"({holm_text(cmp)}), over {r.units()}.")
    if cmp.verdict == replication.TOO_FEW:
        return (f"No confirmed winner: {w.config_id} (chosen on dev) has {where}; against the baseline "
                f"{difference(r)}, too few seeds for a verdict ({r.units()}).")
    return (f"No confirmed winner: {w.config_id} (chosen on dev) has {where}; against the baseline "
            f"{difference(r)} ({holm_text(cmp)}): {cmp.verdict}, over {r.units()}.")


def _fixed_line(out: Confirmed) -> str:
    """The verdict with these signers held fixed: what new seeds and queries of the same signers would say."""
    cmp = next((c for c in out.fixed if c.config_id == out.winner), None)
    if cmp is None or cmp.result is None or cmp.verdict == replication.TOO_FEW:
        return ""
    line = (f"With these {out.signers} signers held fixed (new seeds and queries of the same signers, not new "
            f"signers): {difference(cmp.result)} ({holm_text(cmp)}), {cmp.verdict}.")
    return f"{line} {cmp.seeds}" if cmp.seeds else line


def _test_line(out: Confirmed, runs: Runs, signers: np.ndarray | None, resamples: int, seed: int) -> str:
    """Whether the dev pick is the best on the held-out split: a tie is said as one; "did not hold" only when
    the pick's test mean is strictly worse, with the seed-level comparison of the two."""
    if not out.test_best or out.winner is None:
        return ""
    w = _config(out, out.winner)
    if out.winner in out.test_best:
        others = [c for c in out.test_best if c != out.winner]
        if not others or w.test is None:
            return ""
        return (f"{' and '.join([out.winner, *others])} tie on the {out.split} split ({out.metric} "
                f"{num(w.test.estimate, out.metric)}): the dev pick is as good as the best there.")
    best = out.test_best[0]
    res = replication.compare_seeds(runs[out.winner], runs[best], out.metric, signers, resamples=resamples,
                                    seed=seed) if runs.get(out.winner) and runs.get(best) else None
    how = f" ({out.winner} - {best} {difference(res)}, {res.verdict})" if res is not None else ""
    return (f"The configuration chosen on dev ({out.winner}) is not the best on the {out.split} split "
            f"({', '.join(out.test_best)}): the dev ranking did not hold{how}.")


def sentences(out: Confirmed, runs: Runs, signers: np.ndarray | None, resamples: int = stats.RESAMPLES,
              seed: int = stats.SEED) -> tuple[str, list[str]]:
    """(the headline, the lines after it)."""
    if out.winner is None:
        return f"No configuration finished its confirmation on the {out.split} split.", []
    cmp = next((c for c in out.comparisons if c.config_id == out.winner), None)
    lines = [cmp.seeds if cmp is not None else "", _fixed_line(out)]
    if len(out.dev_ties) > 1:
        lines.append(f"{' and '.join(out.dev_ties)} tie on their dev mean over seeds: {out.winner} is taken by "
                     "its earlier search rank.")
    lines.append(_test_line(out, runs, signers, resamples, seed))
    return _head(out, _config(out, out.winner), cmp), [x for x in lines if x]

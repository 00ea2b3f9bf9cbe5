"""The document's headline section: the confirmation stage on the held-out split (``report/verdicts/confirmed.py``),
the comparisons with the baseline (signers as clusters, then held fixed), per-signer numbers and, with
``confirm.ablate``, which change earned the gain (``report/verdicts/attribution.py``)."""

from __future__ import annotations

import math

from vlp_sweep.report.render.blocks import INACTIVE, INACTIVE_NOTE, Block, fmt, fmt_ci, pct
from vlp_sweep.report.types import Attribution, Confirmed, ConfirmedComparison, ConfirmedConfig, Report
from vlp_sweep.report.values import value_label
from vlp_sweep.report.verdicts.headline import difference, holm_text


def _runs_cell(c: ConfirmedConfig, metric: str) -> str:
    """Per seed: the test value and the selected epoch, or the error of a failed trial."""
    parts = []
    for r in c.runs:
        if r.status == "TERMINATED":
            parts.append(f"seed {r.seed}: {fmt(r.test, metric)} (epoch {fmt(r.selected_epoch)})")
        else:
            parts.append(f"seed {r.seed}: FAILED ({r.error or r.status.lower()})")
    return "; ".join(parts)


def _config_table(rep: Report) -> Block:
    conf = rep.confirmed
    assert conf is not None
    keys = list(conf.configs[0].config) if conf.configs else []
    m = conf.metric
    headers = ["config", "search trials", *keys, f"search {m} (selection)", f"dev {m}, mean over seeds (selection)",
               f"{conf.split} {m}, mean [{pct(rep.level)} CI]", "per seed"]
    rows = [[c.config_id + (" (winner)" if c.config_id == conf.winner else ""), ", ".join(c.search_trials) or "-",
             *[value_label(c.config.get(k)) + (INACTIVE if k in c.inactive else "") for k in keys],
             fmt(c.search_value, m), fmt(c.dev_mean, m),
             fmt_ci(c.test, m), _runs_cell(c, m)] for c in conf.configs]
    return Block("table", headers=headers, rows=rows, text_cols=(0, 1), wrap_cols=(len(headers) - 1,))


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def comparison_table(cmps: list[ConfirmedComparison], level: float, against: str = "baseline") -> Block:
    """One row per comparison: the difference with its interval, raw and Holm p, df, verdict, units."""
    headers = ["config", f"config - {against} [{pct(level)} CI]", "p", "Holm p", "df", "verdict", "over"]
    rows = []
    for c in cmps:
        r = c.result
        if r is None:
            rows.append([c.config_id, "-", "-", "-", "-", c.verdict, "-"])
            continue
        rows.append([c.config_id, difference(r), _p(r.p), holm_text(c).removeprefix("Holm p ").removeprefix("= "),
                     "-" if math.isnan(r.df) else f"{r.df:.1f}", c.verdict, r.units()])
    return Block("table", headers=headers, rows=rows, text_cols=(0, 5, 6), wrap_cols=(5, 6))


def _per_signer(conf: Confirmed) -> list[Block]:
    """The winner's and the baseline's metric on each signer's queries (mean, min-max over seeds)."""
    if not conf.per_signer or conf.winner is None:
        return []
    sides = list(conf.per_signer)
    by = {cid: {r.signer: r for r in rows} for cid, rows in conf.per_signer.items()}
    first = conf.per_signer[sides[0]]
    m = conf.metric
    headers = ["signer", "queries", *[f"{cid} {m} (min-max over seeds)" for cid in sides]]
    rows = [[r.signer, str(r.queries), *[f"{fmt(by[cid][r.signer].mean, m)} ({fmt(by[cid][r.signer].low, m)}-"
                                           f"{fmt(by[cid][r.signer].high, m)})" for cid in sides]] for r in first]
    return [Block("h3", "Per signer"),
            Block("p", f"Each signer's test queries alone: how much of the result one signer carries. "
                       f"{len(first)} signers; a verdict over new signers rests on this spread."),
            Block("table", headers=headers, rows=rows, text_cols=(0,))]


def attribution_blocks(att: Attribution, metric: str, level: float) -> list[Block]:
    out = [Block("h3", f"Which change earned it: the winner ({att.winner}) with one key reverted to the baseline")]
    if not att.rows:
        return [*out, Block("p", att.note or "No ablation ran.")]
    out.append(Block("p", f"Contribution: the winner minus the same configuration with that key at the baseline's "
                          f"value, trained with the same fresh seeds, on the held-out split ({metric}; positive: the "
                          "key helps). Seed-level intervals over signers as the headline's, Holm across the keys. "
                          "Contributions need not add up to the gain over the baseline: keys interact."))
    headers = ["key", "winner", "baseline", f"contribution [{pct(level)} CI]", "Holm p", "verdict", "over"]
    rows = []
    for a in att.rows:
        c, r = a.comparison, a.comparison.result
        rows.append([a.key, value_label(a.winner_value), value_label(a.baseline_value),
                     difference(r) if r is not None else "0" if a.identical else "-",
                     holm_text(c).removeprefix("Holm p ").removeprefix("= ") if r is not None else "-",
                     c.verdict, r.units() if r is not None else "-"])
    out.append(Block("table", headers=headers, rows=rows, text_cols=(0, 1, 2, 5, 6), wrap_cols=(5, 6)))
    if att.unchanged:
        out.append(Block("p", f"Reverting {', '.join(att.unchanged)} changes nothing distinguishable at these "
                              "seeds and signers."))
    if att.identical:
        out.append(Block("p", f"Reverting {', '.join(att.identical)} changes nothing at all: the same test ranks "
                              "on every seed."))
    for key, why in att.skipped.items():
        out.append(Block("note", f"{key} was not reverted alone: {why}"))
    return out


def confirmed(rep: Report, images: set[str]) -> list[Block]:
    head = Block("h2", "Confirmed result (held-out split, fresh seeds)")
    conf = rep.confirmed
    if conf is None:
        return [head, Block("p", "This sweep has no confirmation stage (confirm: none): every number below is a "
                                 "selection number, measured on the split that chose it.")]
    out = [head, Block("p", conf.headline), *[Block("p", line) for line in conf.lines]]
    if not conf.configs:
        return out
    units = f"{conf.signers} signers as clusters" if conf.signers else "queries (no signer ids)"
    out += [Block("p", f"The top configurations of the search and the baseline config, trained again with seeds "
                       f"{conf.seeds} for their full budget; each picked its epoch on the eval split and was "
                       f"evaluated once on the {conf.split} split. Search and dev columns are selection numbers; "
                       f"the {conf.split} column is not. Interval: t over seeds (the unit of replication) and "
                       f"{units}. The winner is chosen by its dev mean over seeds, never by the {conf.split} "
                       "split."), _config_table(rep)]
    if any(c.inactive for c in conf.configs):
        out.append(Block("p", INACTIVE_NOTE + "."))
    if conf.comparisons:
        out += [Block("h3", "Against the baseline config (seed-level, signers as clusters)"),
                Block("p", f"The difference of the means over seeds; its variance has the seeds' spread and what "
                           f"the draw of the test split's {units} adds; Welch-Satterthwaite df. Holm's correction "
                           f"across the {len(conf.comparisons)} comparisons. This is the only comparison in the "
                           "report with a verdict."), comparison_table(conf.comparisons, rep.level)]
    if conf.fixed:
        out += [Block("h3", f"With these {conf.signers} signers held fixed"),
                Block("p", "The same comparisons for new seeds and new queries of the same signers only (strata): "
                           "narrower where the signers differ, and true of these signers, not of new ones."),
                comparison_table(conf.fixed, rep.level)]
    out += _per_signer(conf)
    if conf.attribution is not None:
        out += attribution_blocks(conf.attribution, conf.metric, rep.level)
    return out

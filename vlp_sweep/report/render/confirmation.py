"""The document's headline section: the confirmation stage on the held-out split (``report/confirmed.py``)."""

from __future__ import annotations

from vlp_sweep.report.confirmed import holm_text
from vlp_sweep.report.render.blocks import INACTIVE, INACTIVE_NOTE, Block, fmt, fmt_ci, pct, signed
from vlp_sweep.report.stats import format_p
from vlp_sweep.report.types import ConfirmedConfig, Report
from vlp_sweep.report.values import value_label


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


def _comparison_table(rep: Report) -> Block:
    conf = rep.confirmed
    assert conf is not None
    headers = ["config", f"config - baseline [{pct(rep.level)} CI]", "p", "Holm p", "P(improvement)", "verdict",
               "seeds", "queries"]
    rows = []
    for c in conf.comparisons:
        r = c.result
        if r is None:
            rows.append([c.config_id, "-", "-", "-", "-", c.verdict, "-", "-"])
            continue
        rows.append([c.config_id, f"{signed(r.diff)} [{signed(r.low)}, {signed(r.high)}]",
                     _p(r.p, r.resamples), holm_text(c).removeprefix("p = ").replace("p < ", "< "),
                     f"{r.p_improve:.2f}",
                     c.verdict, f"{r.seeds_a} vs {r.seeds_b}", str(r.n_queries)])
    return Block("table", headers=headers, rows=rows, text_cols=(0, 5), wrap_cols=(5,))


def _p(p: float | None, resamples: int) -> str:
    return "-" if p is None else format_p(p, resamples).removeprefix("p = ").replace("p < ", "< ")


def confirmed(rep: Report, images: set[str]) -> list[Block]:
    head = Block("h2", "Confirmed result (held-out split, fresh seeds)")
    conf = rep.confirmed
    if conf is None:
        return [head, Block("p", "This sweep has no confirmation stage (confirm: none): every number below is a "
                                 "selection number, measured on the split that chose it.")]
    out = [head, Block("p", conf.headline)]
    if not conf.configs:
        return out
    out += [Block("p", f"The top configurations of the search and the baseline config, trained again with seeds "
                       f"{conf.seeds} for their full budget; each picked its epoch on the eval split and was "
                       f"evaluated once on the {conf.split} split. Search and dev columns are selection numbers; "
                       f"the {conf.split} column is not. Interval: bootstrap over seeds, then queries "
                       f"({rep.resamples} resamples). The winner is chosen by its dev mean over seeds, never by "
                       f"the {conf.split} split."), _config_table(rep)]
    if any(c.inactive for c in conf.configs):
        out.append(Block("p", INACTIVE_NOTE + "."))
    if conf.test_best and conf.winner and conf.test_best != conf.winner:
        out.append(Block("note", f"The configuration chosen on dev ({conf.winner}) is not the best on the "
                                 f"{conf.split} split ({conf.test_best}): the dev ranking did not hold."))
    if conf.comparisons:
        out += [Block("h3", "Against the baseline config (paired over test queries, pooled over seeds)"),
                Block("p", f"Holm's correction across the {len(conf.comparisons)} comparisons; P(improvement): "
                           "the share of bootstrap draws (seeds and queries) in which the configuration beats "
                           "the baseline."), _comparison_table(rep)]
    return out
